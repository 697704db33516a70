"""Tune fusion settings (method, alpha or weights, normalization, RRF k, fetch_k) on judged queries.

Retrieval is the expensive part of evaluating a fusion setting; fusing is not. `tune` therefore
runs the retrievers **once** per query (`gather_pools`: every candidate with its raw scores, down
to the largest ``fetch_k`` of the grid) and scores every setting of the grid on those cached
candidate pools. A smaller ``fetch_k`` is simulated by cutting the pools, an ``alpha`` sweep by
re-weighting the same normalized scores: a 21-point alpha sweep costs little more than one
evaluation pass.

The settings are scored exactly as `FusionRetriever` ranks (same normalization, fusion and
tie-breaking, see ``tests/unit_tests/test_tune.py``), with the metric conventions of
`compute_metrics`.

Example:
    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> from langchain_core.documents import Document
    >>> from langchain_fusion import FusionRetriever
    >>> docs = [Document(t, id=str(i)) for i, t in enumerate(
    ...     ["error E-217 battery too cold", "charging the battery in winter", "warranty terms",
    ...      "error E-404 page not found", "cold weather driving tips"])]
    >>> retriever = FusionRetriever.from_documents(docs, DeterministicFakeEmbedding(size=16))
    >>> report = tune(retriever, {"a": "E-217", "b": "E-404", "c": "warranty"},
    ...               {"a": {"0": 1}, "b": {"3": 1}, "c": {"2": 1}},
    ...               grid={"alpha": [0.0, 0.5, 1.0]}, show_progress=False)
    >>> report.best, report.best_score
    ({'method': 'convex', 'normalization': 'minmax', 'alpha': 0.0, 'fetch_k': 100}, 1.0)
    >>> report.retriever.alpha
    0.0

"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import product
from time import perf_counter
from typing import Any

import numpy as np
from numpy.typing import NDArray

from langchain_fusion import fusion
from langchain_fusion.evaluation._checks import check_int as _check_int
from langchain_fusion.evaluation._checks import examples as _examples
from langchain_fusion.evaluation.metrics import Metric, Qrels, QrelsLike, parse_metric
from langchain_fusion.retriever import CandidatePool, FusionRetriever

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

DEFAULT_ALPHAS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(21))
"""The default alpha grid: 0.0, 0.05, ..., 1.0 (21 points)."""
DEFAULT_NORMALIZATIONS: tuple[str, ...] = ("minmax", "zscore", "dbsf")
"""Normalizations searched by default for the convex method."""
DEFAULT_RRF_K: tuple[float, ...] = (10, 20, 40, 60, 100)
"""RRF constants searched by default."""
GRID_KEYS: tuple[str, ...] = ("method", "alpha", "weights", "normalization", "rrf_k", "fetch_k")
"""The settings a tuning grid may vary."""

_METHODS = ("convex", "rrf")
_SHORTHANDS = ("minmax", "zscore", "dbsf")
_NORMALIZATIONS = ("minmax", "zscore", "dbsf", "none")


# ------------------------------------------------------------------------------------ helpers


def simplex_grid(n: int, step: float = 0.1) -> list[tuple[float, ...]]:
    """All weight vectors of ``n`` non-negative multiples of ``step`` that sum to 1.

    Args:
        n: Number of retrievers, >= 1.
        step: Grid spacing; ``1 / step`` must be a whole number.

    Returns:
        The weight vectors, in lexicographic order (weights not all zero by construction).

    Raises:
        ValueError: If ``n < 1`` or ``1 / step`` is not a positive whole number.

    Example:
        >>> simplex_grid(3, 0.5)
        [(0.0, 0.0, 1.0), (0.0, 0.5, 0.5), (0.0, 1.0, 0.0), (0.5, 0.0, 0.5), (0.5, 0.5, 0.0), (1.0, 0.0, 0.0)]
        >>> len(simplex_grid(3, 0.1))
        66

    """  # noqa: E501
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be an integer >= 1 (number of retrievers), got {n!r}")
    steps = 1.0 / step if isinstance(step, numbers.Real) and step > 0 else math.nan
    if not math.isfinite(steps) or abs(steps - round(steps)) > 1e-9 or step > 1:
        raise ValueError(
            f"step must divide 1 into a whole number of parts (e.g. 0.1), got {step!r}"
        )
    m = round(steps)

    def compositions(total: int, parts: int) -> Iterator[tuple[int, ...]]:
        if parts == 1:
            yield (total,)
            return
        for first in range(total + 1):
            for rest in compositions(total - first, parts - 1):
                yield (first, *rest)

    return [tuple(round(c / m, 10) for c in combo) for combo in compositions(m, int(n))]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return str(value)


# ------------------------------------------------------------------------------------ pools


@dataclass
class PoolCache:
    """Candidate pools of judged queries, gathered once and reused by every tuning setting.

    Attributes:
        query_ids: The judged query ids, in input order.
        texts: The query texts, aligned with ``query_ids``.
        pools: One `CandidatePool` per query (down to ``fetch_k`` per retriever).
        fetch_k: How many candidates each retriever was asked for.
        seconds: Wall-clock time spent gathering.
        complete_scoring: Whether the retriever scored every candidate on every side (then a
            smaller ``fetch_k`` is simulated exactly).

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> r = FusionRetriever.from_texts(["a b", "b c"], DeterministicFakeEmbedding(size=8),
        ...                                ids=["1", "2"])
        >>> cache = gather_pools(r, {"q": "b"}, fetch_k=5, show_progress=False)
        >>> cache.query_ids, len(cache.pools[0])
        (['q'], 2)

    """

    query_ids: list[str]
    texts: list[str]
    pools: list[CandidatePool] = field(repr=False)
    fetch_k: int
    seconds: float
    complete_scoring: bool = True

    def __len__(self) -> int:
        return len(self.query_ids)

    def subset(self, query_ids: Sequence[str]) -> PoolCache:
        """Restrict the cache to ``query_ids`` (unknown ids raise KeyError).

        Example:
            >>> cache = PoolCache(["a", "b"], ["x", "y"], [], fetch_k=10, seconds=0.0)
            >>> cache.subset([]).query_ids
            []

        """
        where = {q: i for i, q in enumerate(self.query_ids)}
        picked = [where[q] for q in query_ids]
        return PoolCache(
            query_ids=[self.query_ids[i] for i in picked],
            texts=[self.texts[i] for i in picked],
            pools=[self.pools[i] for i in picked],
            fetch_k=self.fetch_k,
            seconds=self.seconds,
            complete_scoring=self.complete_scoring,
        )


def window(pool: CandidatePool, fetch_k: int, *, complete_scoring: bool = True) -> CandidatePool:
    """Cut a pool to what a retriever asked for only ``fetch_k`` candidates would return.

    The function form of [`CandidatePool.window`][langchain_fusion.CandidatePool.window], which
    describes the rules.

    Example:
        >>> import numpy as np
        >>> pool = CandidatePool(keys=["id:a", "id:b"], names=["dense"], raw=np.array([[0.9, 0.2]]),
        ...     found_rank=np.array([[1, 2]]), has_scores=np.array([True]),
        ...     _docs=[None] * 2, _loaders=[None] * 2)
        >>> window(pool, 1).keys
        ['id:a']

    """
    return pool.window(fetch_k, complete_scoring=complete_scoring)


def _check_queries(queries: Any) -> None:
    if not isinstance(queries, Mapping):
        raise TypeError(
            f"queries must be a mapping {{query_id: text}}, got {type(queries).__name__}"
        )
    if not queries:
        raise ValueError("queries is empty; give at least one {query_id: text}")
    for qid, text in queries.items():
        if not isinstance(text, str):
            raise TypeError(f"queries[{qid!r}] must be a string, got {type(text).__name__}")


def _judged(queries: Mapping[str, str], qrels: Qrels, stacklevel: int = 3) -> list[str]:
    _check_queries(queries)
    judged = [q for q in queries if q in qrels]
    if not judged:
        raise ValueError(
            f"no query has judgments: none of the {len(queries)} query ids "
            f"({_examples(queries)}) is in qrels ({_examples(qrels.query_ids)}); tuning needs "
            "judged queries (pass the qrels of the same split as the queries)"
        )
    if len(judged) < len(queries):
        skipped = [q for q in queries if q not in qrels]
        warnings.warn(
            f"{len(skipped)} of {len(queries)} queries have no judgments in qrels and are left "
            f"out of tuning ({_examples(skipped)})",
            UserWarning,
            stacklevel=stacklevel,
        )
    return judged


def gather_pools(
    retriever: FusionRetriever,
    queries: Mapping[str, str],
    qrels: QrelsLike | None = None,
    *,
    fetch_k: int | None = None,
    show_progress: bool = True,
    max_concurrency: int | None = None,
) -> PoolCache:
    """Run the retrievers once per query and keep every candidate with its raw scores.

    Queries run on a thread pool (``max_concurrency`` workers, default ``min(4, CPUs)``) with a
    progress bar; each query's retrievers run concurrently inside ``FusionRetriever.gather``.

    Args:
        retriever: The retriever to tune.
        queries: ``{query_id: text}``.
        qrels: When given, queries without judgments are left out (with a warning).
        fetch_k: Candidates per retriever (default: the retriever's ``fetch_k``).
        show_progress: Show a tqdm progress bar.
        max_concurrency: Queries gathered in parallel.

    Returns:
        A `PoolCache`.

    Raises:
        TypeError: If ``retriever`` is not a `FusionRetriever` or a query is not a string.
        ValueError: If no query is judged, or ``fetch_k`` / ``max_concurrency`` is not >= 1.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> r = FusionRetriever.from_texts(["a b", "b c"], DeterministicFakeEmbedding(size=8))
        >>> gather_pools(r, {"q1": "b", "q2": "c"}, show_progress=False).fetch_k
        100

    """
    if not isinstance(retriever, FusionRetriever):
        raise TypeError(
            f"retriever must be a FusionRetriever (tuning re-fuses its candidate pools), "
            f"got {type(retriever).__name__}"
        )
    depth = _check_int("fetch_k", retriever.fetch_k if fetch_k is None else fetch_k)
    if max_concurrency is None:
        max_concurrency = min(4, os.cpu_count() or 1)
    workers = _check_int("max_concurrency", max_concurrency)
    if qrels is not None:
        ids = _judged(queries, qrels if isinstance(qrels, Qrels) else Qrels(qrels))
    else:
        _check_queries(queries)
        ids = list(queries)
    texts = [queries[q] for q in ids]

    from tqdm.auto import tqdm

    def one(i: int) -> CandidatePool:
        try:
            return retriever.gather(texts[i], fetch_k=depth)
        except Exception as exc:
            if hasattr(exc, "add_note"):
                exc.add_note(f"(while gathering candidates for query {ids[i]!r})")
            raise

    start = perf_counter()
    pools: list[CandidatePool] = []
    with (
        tqdm(total=len(ids), desc="Gathering", unit="query", disable=not show_progress) as bar,
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fusion-tune") as pool,
    ):
        for result in pool.map(one, range(len(ids))):
            pools.append(result)
            bar.update(1)
    return PoolCache(
        query_ids=ids,
        texts=texts,
        pools=pools,
        fetch_k=depth,
        seconds=perf_counter() - start,
        complete_scoring=retriever.complete_scoring is not False,
    )


def _pairs_of(cross_fit: Any) -> list[tuple[list[str], FusionRetriever]]:
    """``cross_fit`` as a list of ``(query_ids, retriever)`` (bad shapes raise TypeError)."""
    if isinstance(cross_fit, (str, bytes, Mapping)) or not isinstance(cross_fit, Iterable):
        raise TypeError(
            "cross_fit must be a list of (query_ids, retriever) pairs, got "
            f"{type(cross_fit).__name__}"
        )
    out = []
    for g, pair in enumerate(cross_fit):
        if not (isinstance(pair, Sequence) and len(pair) == 2):
            raise TypeError(f"cross_fit[{g}] must be a (query_ids, retriever) pair, got {pair!r}")
        ids, fold_retriever = pair
        if not isinstance(fold_retriever, FusionRetriever):
            raise TypeError(
                f"cross_fit[{g}]'s retriever must be a FusionRetriever, got "
                f"{type(fold_retriever).__name__}"
            )
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise TypeError(f"cross_fit[{g}]'s query ids must be a list of ids, got {ids!r}")
        out.append((list(ids), fold_retriever))
    return out


_SOURCE_FIELDS = frozenset(
    {"vectorstore", "keyword_retriever", "retrievers", "sources", "names", "index"}
)


def _like(retriever: FusionRetriever, fold_retriever: FusionRetriever) -> FusionRetriever:
    """``fold_retriever``'s sources with every setting of ``retriever`` (filter, feedback...)."""
    fields = type(retriever).model_fields
    update = {f: getattr(retriever, f) for f in fields if f not in _SOURCE_FIELDS}
    return fold_retriever.model_copy(update=update)


def _cross_fit_groups(
    retriever: FusionRetriever, cross_fit: Any, queries: Mapping[str, str], judged: Sequence[str]
) -> list[tuple[list[str], FusionRetriever]]:
    """Check that ``cross_fit`` gives each judged query one retriever built like ``retriever``.

    The fold retrievers lend their sources; every other setting is ``retriever``'s.
    """
    wanted = set(judged)
    owner: dict[str, int] = {}
    groups: list[tuple[list[str], FusionRetriever]] = []
    for g, (ids, fold_retriever) in enumerate(_pairs_of(cross_fit)):
        if fold_retriever.names != retriever.names:
            raise ValueError(
                f"cross_fit[{g}]'s retriever has sources {fold_retriever.names}, the tuned "
                f"retriever {retriever.names}; build both the same way (only the model differs)"
            )
        mine = []
        for q in ids:
            if q not in queries:
                raise ValueError(f"cross_fit[{g}] names query {q!r}, which is not in queries")
            if q in owner:
                raise ValueError(
                    f"query {q!r} is in cross_fit[{owner[q]}] and cross_fit[{g}]; each query "
                    "needs exactly one retriever"
                )
            owner[q] = g
            if q in wanted:
                mine.append(q)
        groups.append((mine, _like(retriever, fold_retriever)))
    missing = [q for q in judged if q not in owner]
    if missing:
        raise ValueError(
            f"{len(missing)} judged queries are in no cross_fit group ({_examples(missing)}); "
            "give every query to a retriever whose model was not trained on it"
        )
    return groups


def _trained_on(retriever: FusionRetriever) -> tuple[str, set[str]] | None:
    """Return the fine-tuned model among ``retriever``'s sources and its training query ids."""
    from langchain_fusion.dense.embeddings import LocalEmbeddings
    from langchain_fusion.dense.finetune import fine_tuning_record

    for source in retriever.sources:
        for holder in (getattr(source, "index", None), getattr(source, "vectorstore", None)):
            embeddings = getattr(holder, "embeddings", None) if holder is not None else None
            path = getattr(embeddings, "model_path", None)
            if isinstance(embeddings, LocalEmbeddings) and path is not None:
                record = fine_tuning_record(path)
                if record is not None:
                    return path, set(record["query_ids"])
    return None


def _warn_if_trained_on(retriever: FusionRetriever, judged: Sequence[str]) -> None:
    trained = _trained_on(retriever)
    if trained is None:
        return
    path, ids = trained
    overlap = [q for q in judged if q in ids]
    if overlap:
        warnings.warn(
            f"the dense model {path} was fine-tuned on {len(overlap)} of these {len(judged)} "
            f"queries ({_examples(overlap)}): it scores them better than new ones, so the "
            "settings chosen give the dense side too much weight; tune on other queries, or "
            "pass cross_fit= (models fine-tuned without each query)",
            UserWarning,
            stacklevel=4,
        )


def _gather(
    retriever: FusionRetriever,
    queries: Mapping[str, str],
    judged: list[str],
    depth: int,
    cross_fit: Any,
    show_progress: bool,
    max_concurrency: int | None,
) -> PoolCache:
    """`gather_pools` of the judged queries, each from its cross-fit retriever when given."""
    if cross_fit is None:
        _warn_if_trained_on(retriever, judged)
        return gather_pools(
            retriever,
            {q: queries[q] for q in judged},
            fetch_k=depth,
            show_progress=show_progress,
            max_concurrency=max_concurrency,
        )
    found: dict[str, tuple[str, CandidatePool]] = {}
    seconds, complete = 0.0, True
    for ids, fold_retriever in _cross_fit_groups(retriever, cross_fit, queries, judged):
        if not ids:
            continue
        part = gather_pools(
            fold_retriever,
            {q: queries[q] for q in ids},
            fetch_k=depth,
            show_progress=show_progress,
            max_concurrency=max_concurrency,
        )
        found.update(zip(part.query_ids, zip(part.texts, part.pools, strict=True), strict=True))
        seconds += part.seconds
        complete = complete and part.complete_scoring
    return PoolCache(
        query_ids=list(judged),
        texts=[found[q][0] for q in judged],
        pools=[found[q][1] for q in judged],
        fetch_k=depth,
        seconds=seconds,
        complete_scoring=complete,
    )


# ------------------------------------------------------------------------------------ grid


def _as_list(key: str, values: Any) -> list[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        values = [values]
    out = list(values)
    if not out:
        raise ValueError(f"grid[{key!r}] is empty; give at least one value")
    return out


def _check_alpha(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= float(value) <= 1:
        raise ValueError(f"grid['alpha'] values must be numbers in [0, 1], got {value!r}")
    return float(value)


def _check_rrf_k(value: Any) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0:
        raise ValueError(f"grid['rrf_k'] values must be finite numbers >= 0, got {value!r}")
    return float(value) if not float(value).is_integer() else int(value)


def _expand_grid(
    retriever: FusionRetriever, grid: Mapping[str, Any] | None, depth: int | None, cutoff: int
) -> tuple[list[dict[str, Any]], int]:
    """Expand a grid into concrete settings; return them and the gather depth."""
    n_src = len(retriever.sources)
    if grid is None:
        base = depth if depth is not None else retriever.fetch_k
        # largest first: on a tie the retriever's own fetch_k wins
        windows = sorted({max(cutoff, base // 4), max(cutoff, base // 2), base}, reverse=True)
        grid = {
            "method": list(_METHODS),
            "normalization": list(DEFAULT_NORMALIZATIONS),
            "rrf_k": list(DEFAULT_RRF_K),
            "fetch_k": [w for w in windows if w <= base],
        }
        if n_src == 2:
            grid["alpha"] = list(DEFAULT_ALPHAS)
        else:
            grid["weights"] = simplex_grid(n_src, 0.1 if n_src <= 3 else 0.25)
    if not isinstance(grid, Mapping):
        raise TypeError(f"grid must be a mapping {{setting: [values]}}, got {type(grid).__name__}")
    if not grid:
        raise ValueError(
            f"grid is empty; give at least one setting to search among {list(GRID_KEYS)} "
            "(or grid=None for the default search)"
        )
    unknown = [k for k in grid if k not in GRID_KEYS]
    if unknown:
        raise ValueError(f"grid has unknown setting(s) {unknown}; valid keys are {list(GRID_KEYS)}")
    if "alpha" in grid and "weights" in grid:
        raise ValueError("grid must vary either 'alpha' or 'weights', not both")
    if "alpha" in grid and n_src != 2:
        raise ValueError(
            f"grid['alpha'] needs exactly two retrievers (vector, keyword); this retriever fuses "
            f"{n_src}: vary grid['weights'] instead (e.g. simplex_grid({n_src}))"
        )

    methods: list[tuple[str, str | None]] = []
    for m in _as_list("method", grid.get("method", [retriever.method])):
        value = m.value if hasattr(m, "value") else m
        name = value.lower() if isinstance(value, str) else value
        if name in _SHORTHANDS:
            methods.append(("convex", name))
        elif name in _METHODS:
            methods.append((name, None))
        else:
            allowed = ", ".join(_METHODS + _SHORTHANDS)
            raise ValueError(f"grid['method'] values must be one of {allowed}; got {m!r}")
    norms: list[str] = []
    for nv in _as_list("normalization", grid.get("normalization", [retriever.normalization])):
        value = nv.value if hasattr(nv, "value") else nv
        if not isinstance(value, str) or value.lower() not in _NORMALIZATIONS:
            raise ValueError(
                f"grid['normalization'] values must be one of {', '.join(_NORMALIZATIONS)}; "
                f"got {nv!r}"
            )
        norms.append(value.lower())
    rrf_ks = [_check_rrf_k(v) for v in _as_list("rrf_k", grid.get("rrf_k", [retriever.rrf_k]))]
    if "weights" in grid:
        mixes: list[tuple[str, Any]] = []
        for w in _as_list("weights", grid["weights"]):
            try:
                checked = fusion.validate_weights(w, n_src)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"grid['weights'] has an invalid entry {w!r}: {exc}") from None
            mixes.append(("weights", tuple(float(x) for x in checked)))
    elif "alpha" in grid or (n_src == 2 and retriever.weights is None):
        alphas = grid.get("alpha", [retriever.alpha])
        mixes = [("alpha", _check_alpha(a)) for a in _as_list("alpha", alphas)]
    else:
        current = retriever.weights if retriever.weights is not None else [1.0] * n_src
        mixes = [("weights", tuple(float(x) for x in current))]
    fetch_ks = [
        _check_int("grid['fetch_k'] values", v)
        for v in _as_list("fetch_k", grid.get("fetch_k", [depth or retriever.fetch_k]))
    ]
    gather_depth = depth if depth is not None else max(fetch_ks)
    too_deep = [f for f in fetch_ks if f > gather_depth]
    if too_deep:
        raise ValueError(
            f"grid['fetch_k'] values {too_deep} exceed fetch_k={gather_depth}, the depth the "
            "candidates are gathered at; raise fetch_k or drop those values"
        )

    settings: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for (method, forced_norm), fk, (mix_key, mix) in product(methods, fetch_ks, mixes):
        variants: list[dict[str, Any]]
        if method == "convex":
            use = [forced_norm] if forced_norm is not None else norms
            variants = [{"method": "convex", "normalization": n} for n in use]
        else:
            variants = [{"method": "rrf", "rrf_k": k} for k in rrf_ks]
        for v in variants:
            s = {**v, mix_key: mix, "fetch_k": fk}
            key = tuple(sorted(s.items()))
            if key not in seen:
                seen.add(key)
                settings.append(s)
    return settings, gather_depth


# ------------------------------------------------------------------------------------ scoring


@dataclass
class _QueryData:
    """One query's pool, windowed per fetch_k, with candidate gains (internal)."""

    gains: dict[int, NDArray[np.float64]]
    windows: dict[int, CandidatePool]
    ideal: NDArray[np.float64]
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
        ideal = np.array(sorted(relevant.values(), reverse=True), dtype=np.float64)
        data.append(_QueryData(gains, windows, ideal, len(relevant), dups))
    return data


_DISCOUNT = 1.0 / np.log2(np.arange(2, 10002, dtype=np.float64))


def _metric_values(top_gains: NDArray[np.float64], q: _QueryData, metric: Metric) -> NDArray[Any]:
    """Metric of each row of ``top_gains`` (rows = settings, columns = ranks 1..depth)."""
    k = metric.k
    g: NDArray[np.float64] = top_gains[:, :k]
    if g.shape[1] < k:
        g = np.pad(g, ((0, 0), (0, k - g.shape[1])))
    rel: NDArray[np.bool_] = g > 0
    hits: NDArray[np.float64] = rel.sum(axis=1).astype(np.float64)
    if metric.name == "ndcg":
        idcg = float(q.ideal[:k] @ _DISCOUNT[: min(k, q.ideal.size)])
        dcg: NDArray[np.float64] = g @ _DISCOUNT[:k]
        return dcg / idcg if idcg > 0 else np.zeros(g.shape[0])
    if metric.name == "recall":
        return hits / float(q.n_relevant) if q.n_relevant else np.zeros(g.shape[0])
    if metric.name == "precision":
        return hits / k
    if metric.name == "hit_rate":
        return (hits > 0).astype(np.float64)
    first = np.argmax(rel, axis=1)
    return np.where(hits > 0, 1.0 / (first + 1.0), 0.0)


def _fused_orders(
    pool: CandidatePool,
    group: tuple[Any, ...],
    weights: NDArray[np.float64],
    default_rrf_k: float,
    complete_ranks: bool = False,
) -> NDArray[np.intp]:
    """Fused order (best first) of ``pool`` for each row of ``weights``.

    Mirrors ``FusionRetriever``'s fusion operation for operation (normalize each retriever,
    fill a missing score with the row's lowest, weighted sum; or weighted RRF over the
    retrievers' own ranks, or over ranks by complete score when ``complete_ranks``, i.e.
    ``complete_scoring=True``), ties broken by weighted RRF over the retrievers' own ranks, then
    by position. ``tests/unit_tests/test_tune.py`` checks it against ``fuse_pool``.
    """
    n_src, n = pool.raw.shape
    method = group[0]
    rrf_k = float(group[1]) if method == "rrf" else float(default_rrf_k)
    scores = np.empty((n_src, n))
    ranks = np.zeros((n_src, n), dtype=np.int64)
    for i in range(n_src):
        if pool.has_scores[i]:
            scores[i] = pool.raw[i]
            use_scores = complete_ranks or method == "convex"
            ranks[i] = fusion.ranks_from_scores(pool.raw[i]) if use_scores else pool.found_rank[i]
        else:
            found = pool.found_rank[i]
            scores[i] = np.where(found > 0, 1.0 / (rrf_k + found), np.nan)
            ranks[i] = found

    def rrf(r: NDArray[np.int64]) -> NDArray[np.float64]:
        out = np.zeros((weights.shape[0], n_src, n))
        hit = np.broadcast_to(r > 0, out.shape)
        num = np.broadcast_to(weights[:, :, None], out.shape)
        np.divide(num, rrf_k + np.broadcast_to(r, out.shape), out=out, where=hit)
        total: NDArray[np.float64] = out[:, 0].copy()
        for i in range(1, n_src):
            total += out[:, i]
        return total

    if method == "rrf":
        fused = rrf(ranks)
    else:
        normalized = np.vstack([fusion.normalize(scores[i], group[1]) for i in range(n_src)])
        scored = np.isfinite(normalized)
        if not scored.all():
            lowest = np.min(np.where(scored, normalized, np.inf), axis=1)
            fill = np.where(np.isfinite(lowest), lowest, 0.0)
            normalized = np.where(scored, normalized, fill[:, np.newaxis])
        fused = np.vstack([w @ normalized for w in weights])
    tiebreak = rrf(pool.found_rank)
    return np.lexsort((-tiebreak, -fused), axis=-1).astype(np.intp)


def _group_of(s: Mapping[str, Any]) -> tuple[Any, ...]:
    if s["method"] == "rrf":
        return ("rrf", s["rrf_k"])
    return ("convex", s["normalization"])


def _weights_of(s: Mapping[str, Any]) -> tuple[float, ...]:
    if "weights" in s:
        return tuple(s["weights"])
    return (float(s["alpha"]), 1.0 - float(s["alpha"]))


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
        raise ValueError(f"{len(missing)} cached queries have no judgments ({_examples(missing)})")
    resolved: list[dict[str, Any]] = []
    for s in settings:
        unknown = [k for k in s if k not in GRID_KEYS]
        if unknown:
            raise ValueError(
                f"setting has unknown key(s) {unknown}; valid keys are {list(GRID_KEYS)}"
            )
        grid = {k: [v] for k, v in s.items()}
        grid.setdefault("fetch_k", [cache.fetch_k])
        expanded, _ = _expand_grid(retriever, grid, cache.fetch_k, parsed.k)
        resolved.append(expanded[0])
    return _score(retriever, cache, prepared, resolved, parsed, id_key, show_progress)


def _score(
    retriever: FusionRetriever,
    cache: PoolCache,
    qrels: Qrels,
    settings: Sequence[Mapping[str, Any]],
    metric: Metric,
    id_key: str | None,
    show_progress: bool,
) -> NDArray[np.float64]:
    depth = metric.k
    fetch_ks = {int(s["fetch_k"]) for s in settings}
    data = _prepare(cache, qrels, fetch_ks, depth, id_key)
    if data and not any(g.any() for q in data for g in q.gains.values()):
        keys = (k for p in cache.pools for k in p.keys)
        judged = (d for q in cache.query_ids for d in qrels.relevant(q))
        warnings.warn(
            "none of the candidate document ids appears in qrels (candidates e.g. "
            f"{_examples(keys)}; judged relevant e.g. {_examples(judged)}); "
            "check that Document.id (or metadata[id_key]) holds the corpus ids",
            UserWarning,
            stacklevel=3,
        )
    # group settings sharing (fetch_k, method, normalization or rrf_k): one fusion pass each
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, s in enumerate(settings):
        groups.setdefault((int(s["fetch_k"]), *_group_of(s)), []).append(i)
    out = np.zeros((len(settings), len(data)))
    from tqdm.auto import tqdm

    for col, q in enumerate(tqdm(data, desc="Tuning", unit="query", disable=not show_progress)):
        for (fk, *group), rows in groups.items():
            pool = q.windows[fk]
            if len(pool) == 0:
                continue
            weights = np.array([_weights_of(settings[r]) for r in rows], dtype=np.float64)
            orders = _fused_orders(
                pool, tuple(group), weights, retriever.rrf_k, retriever.complete_scoring is True
            )
            gains = q.gains[fk]
            if fk in q.duplicates:  # several candidates map to one document: first one counts
                ids = q.duplicates[fk]
                top = np.zeros((len(rows), depth))
                for r, order in enumerate(orders):
                    seen: set[str] = set()
                    picked: list[int] = []
                    for j in order.tolist():
                        if ids[j] not in seen:
                            seen.add(ids[j])
                            picked.append(j)
                    g = gains[picked[:depth]]
                    top[r, : g.size] = g
            else:
                top = gains[orders[:, :depth]]
            out[rows, col] = _metric_values(top, q, metric)
    return out


# ------------------------------------------------------------------------------------ report


@dataclass
class Fold:
    """One cross-validation fold: the setting chosen on the other folds and its held-out score.

    Example:
        >>> Fold(best={"alpha": 0.3}, train_score=0.71, test_score=0.69, n_test=60).test_score
        0.69

    """

    best: dict[str, Any]
    train_score: float
    test_score: float
    n_test: int


@dataclass
class CrossValidation:
    """k-fold cross-validation of the tuning procedure.

    Attributes:
        folds: One `Fold` per split.
        mean_score: Mean held-out score of the per-fold best settings (the honest estimate of
            what tuning achieves on unseen queries).
        std_score: Standard deviation of the held-out fold scores.

    Example:
        >>> cv = CrossValidation([Fold({}, 0.8, 0.7, 5), Fold({}, 0.9, 0.6, 5)], 0.65, 0.05)
        >>> len(cv.folds), cv.mean_score
        (2, 0.65)

    """

    folds: list[Fold]
    mean_score: float
    std_score: float


def kfold(n: int, k: int, seed: int = 0) -> list[NDArray[np.intp]]:
    """Split ``range(n)`` into ``k`` shuffled, near-equal folds (deterministic for a seed).

    Example:
        >>> [sorted(f.tolist()) for f in kfold(5, 2, seed=0)]
        [[2, 3, 4], [0, 1]]

    """
    _check_int("cv", k, 2)
    if k > n:
        raise ValueError(f"cv must be at most the number of judged queries ({n}), got {k}")
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(f).astype(np.intp) for f in np.array_split(order, k)]


def _best_index(mean_scores: NDArray[np.float64]) -> int:
    """Highest mean score; ties go to the first setting in grid order."""
    top = float(np.max(mean_scores))
    return int(np.flatnonzero(mean_scores >= top - 1e-12)[0])


def cross_validate(
    per_query: NDArray[np.float64], settings: Sequence[Mapping[str, Any]], k: int, seed: int = 0
) -> CrossValidation:
    """Cross-validate "pick the best setting" from a ``(settings, queries)`` score matrix.

    Example:
        >>> import numpy as np
        >>> scores = np.array([[1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]])
        >>> cv = cross_validate(scores, [{"alpha": 0.0}, {"alpha": 1.0}], k=2)
        >>> [f.best for f in cv.folds], cv.mean_score
        ([{'alpha': 0.0}, {'alpha': 0.0}], 0.75)

    """
    folds = kfold(per_query.shape[1], k, seed)
    out: list[Fold] = []
    for test in folds:
        train = np.setdiff1d(np.arange(per_query.shape[1]), test)
        train_means = per_query[:, train].mean(axis=1)
        b = _best_index(train_means)
        out.append(
            Fold(
                dict(settings[b]),
                float(train_means[b]),
                float(per_query[b, test].mean()),
                int(test.size),
            )
        )
    held = np.array([f.test_score for f in out])
    return CrossValidation(out, float(held.mean()), float(held.std()))


@dataclass
class TuningReport:
    """Every setting's score, the best one, and a retriever configured with it.

    Attributes:
        metric: The metric optimized, e.g. ``"ndcg@10"``.
        settings: The settings searched, in grid order.
        scores: Mean metric per setting (aligned with ``settings``).
        per_query: ``(n_settings, n_queries)`` metric values.
        query_ids: The queries tuned on (columns of ``per_query``).
        best: The best setting (ties: first in grid order).
        best_score: Its mean metric.
        retriever: ``retriever.model_copy(update=best)``.
        cv: Cross-validation result when ``cv=`` was given.
        seconds: ``{"gather": ..., "sweep": ...}`` wall-clock seconds.

    Example:
        >>> import numpy as np
        >>> report = TuningReport("ndcg@10", [{"alpha": 0.2}, {"alpha": 0.8}],
        ...     np.array([0.5, 0.7]), np.array([[0.5], [0.7]]), ["q"], {"alpha": 0.8}, 0.7,
        ...     retriever=None)
        >>> print(report.to_markdown())
        | rank | alpha | ndcg@10 |
        |--:|--:|--:|
        | 1 | 0.8 | 0.7000 |
        | 2 | 0.2 | 0.5000 |
        <BLANKLINE>
        best of 2 settings on 1 queries: alpha=0.8 -> ndcg@10 0.7000

    """

    metric: str
    settings: list[dict[str, Any]]
    scores: NDArray[np.float64]
    per_query: NDArray[np.float64] = field(repr=False)
    query_ids: list[str] = field(repr=False)
    best: dict[str, Any]
    best_score: float
    retriever: Any = field(repr=False)
    cv: CrossValidation | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def table(self) -> list[dict[str, Any]]:
        """Rows ``{**setting, metric: score}``, best first (stable for equal scores).

        Example:
            >>> import numpy as np
            >>> r = TuningReport("mrr@10", [{"alpha": 0.0}], np.array([0.5]), np.zeros((1, 1)),
            ...                  ["q"], {"alpha": 0.0}, 0.5, None)
            >>> r.table()
            [{'alpha': 0.0, 'mrr@10': 0.5}]

        """
        order = np.argsort(-self.scores, kind="stable")
        return [{**self.settings[i], self.metric: float(self.scores[i])} for i in order]

    def curve(self, **fixed: Any) -> tuple[list[float], list[float]]:
        """Score against alpha for the settings matching ``fixed`` (e.g. ``method="rrf"``).

        Example:
            >>> import numpy as np
            >>> r = TuningReport("ndcg@10", [{"method": "rrf", "alpha": 0.0},
            ...     {"method": "rrf", "alpha": 1.0}, {"method": "convex", "alpha": 0.5}],
            ...     np.array([0.1, 0.3, 0.2]), np.zeros((3, 1)), ["q"], {}, 0.3, None)
            >>> r.curve(method="rrf")
            ([0.0, 1.0], [0.1, 0.3])

        """
        points = sorted(
            (float(s["alpha"]), float(score))
            for s, score in zip(self.settings, self.scores, strict=True)
            if "alpha" in s and all(s.get(k) == v for k, v in fixed.items())
        )
        return [a for a, _ in points], [v for _, v in points]

    def curves(self, fetch_k: int | None = None) -> dict[str, tuple[list[float], list[float]]]:
        """Return one alpha curve per method / normalization / RRF k, labelled for plots.

        Args:
            fetch_k: Only the settings with this ``fetch_k`` (default: the best setting's).

        Example:
            >>> import numpy as np
            >>> r = TuningReport("ndcg@10", [{"method": "convex", "normalization": "zscore",
            ...     "alpha": 0.5, "fetch_k": 100}, {"method": "rrf", "rrf_k": 60, "alpha": 0.5,
            ...     "fetch_k": 50}], np.array([0.4, 0.3]), np.zeros((2, 1)), ["q"],
            ...     {"fetch_k": 100}, 0.4, None)
            >>> r.curves()
            {'convex zscore': ([0.5], [0.4])}
            >>> r.curves(fetch_k=50)
            {'rrf k=60': ([0.5], [0.3])}

        """
        fk = fetch_k if fetch_k is not None else self.best.get("fetch_k")
        out: dict[str, tuple[list[float], list[float]]] = {}
        for s in self.settings:
            if "alpha" not in s or (fk is not None and s.get("fetch_k", fk) != fk):
                continue
            label = str(s.get("method", "fusion"))
            label += f" {s['normalization']}" if "normalization" in s else ""
            label += f" k={_fmt(s['rrf_k'])}" if "rrf_k" in s else ""
            if label not in out:
                out[label] = self.curve(**{k: v for k, v in s.items() if k != "alpha"})
        return out

    def to_markdown(self, top: int | None = 20, digits: int = 4) -> str:
        """Render the settings as a Markdown table, best first (``top`` rows; None for all).

        Example:
            >>> import numpy as np
            >>> r = TuningReport("mrr@10", [{"alpha": 0.0}], np.array([0.5]), np.zeros((1, 1)),
            ...                  ["q"], {"alpha": 0.0}, 0.5, None)
            >>> print(r.to_markdown().splitlines()[2])
            | 1 | 0 | 0.5000 |

        """
        rows = self.table()
        shown = rows if top is None else rows[:top]
        order = (
            *BM25_KEYS,
            "method",
            "normalization",
            "rrf_k",
            "alpha",
            "weights",
            "fetch_k",
            *FEEDBACK_KEYS,
        )
        keys = [k for k in order if any(k in s for s in self.settings)]
        keys = [k for k in keys if k != "fetch_k" or len({s.get(k) for s in self.settings}) > 1]
        align = {"method": ":--", "normalization": ":--"}
        lines = [
            "| rank | " + " | ".join([*keys, self.metric]) + " |",
            "|" + "|".join(["--:", *(align.get(k, "--:") for k in keys), "--:"]) + "|",
        ]
        for i, row in enumerate(shown, 1):
            cells = [str(i), *(_fmt(row.get(k)) for k in keys), f"{row[self.metric]:.{digits}f}"]
            lines.append("| " + " | ".join(cells) + " |")
        best = ", ".join(f"{k}={_fmt(v)}" for k, v in self.best.items())
        shown_note = f" (top {len(shown)} shown)" if len(shown) < len(rows) else ""
        summary = (
            f"best of {len(self.settings)} settings{shown_note} on {len(self.query_ids)} queries: "
            f"{best} -> {self.metric} {self.best_score:.{digits}f}"
        )
        if self.cv is not None:
            summary += (
                f"\n{len(self.cv.folds)}-fold cross-validation: held-out {self.metric} "
                f"{self.cv.mean_score:.{digits}f} ± {self.cv.std_score:.{digits}f}"
            )
        if self.seconds:
            summary += "\n" + ", ".join(f"{k} {v:.2f} s" for k, v in self.seconds.items())
        return "\n".join([*lines, "", summary])

    def __str__(self) -> str:
        return self.to_markdown()


def _update_for(best: Mapping[str, Any]) -> dict[str, Any]:
    update = dict(best)
    if "alpha" in update:
        update["weights"] = None  # explicit weights would override the tuned alpha
    if "weights" in update:
        update["weights"] = None if update["weights"] is None else list(update["weights"])
    return update


def tune(
    retriever: FusionRetriever,
    queries: Mapping[str, str],
    qrels: QrelsLike,
    *,
    metric: str | Metric = "ndcg@10",
    grid: Mapping[str, Any] | None = None,
    cv: int | None = None,
    fetch_k: int | None = None,
    show_progress: bool = True,
    seed: int = 0,
    id_key: str | None = None,
    max_concurrency: int | None = None,
    pools: PoolCache | None = None,
    cross_fit: Iterable[tuple[Iterable[str], FusionRetriever]] | None = None,
) -> TuningReport:
    """Find the fusion settings that maximize a metric on judged queries.

    The retrievers run once per query (`gather_pools`); every setting of the grid is then
    scored on the cached candidates. With the default grid (``grid=None``) the search covers:

    * ``method``: convex and RRF;
    * ``alpha``: 0, 0.05, ..., 1 (with two retrievers) or ``weights`` on a simplex grid (more);
    * ``normalization``: min-max, z-score, DBSF (convex);
    * ``rrf_k``: 10, 20, 40, 60, 100 (RRF);
    * ``fetch_k``: the retriever's ``fetch_k``, a half and a quarter of it (at least the
      metric cutoff).

    A custom grid searches the keys it gives and keeps the retriever's current value for the
    others: ``grid={"alpha": [0, 0.25, 0.5, 0.75, 1]}`` is a plain alpha sweep.

    Args:
        retriever: The `FusionRetriever` to tune (not modified).
        queries: ``{query_id: text}``; queries without judgments are dropped with a warning.
        qrels: ``{query_id: {doc_id: relevance}}`` or a `Qrels`.
        metric: What to maximize, e.g. ``"ndcg@10"``, ``"recall@100"``, ``"mrr@10"``.
        grid: ``{setting: [values]}`` with keys among `GRID_KEYS`; None for the default search.
        cv: k-fold cross-validation (``cv=5``): the mean held-out score of the per-fold best
            settings estimates how well the tuned setting generalizes.
        fetch_k: Depth the candidates are gathered at (default: the largest ``fetch_k`` of the
            grid, else the retriever's).
        show_progress: Show progress bars.
        seed: Seed of the cross-validation shuffle.
        id_key: Read document ids from ``metadata[id_key]`` instead of ``Document.id``.
        max_concurrency: Queries gathered in parallel.
        pools: Reuse pools from `gather_pools` (same retriever and queries) instead of
            gathering again.
        cross_fit: For a retriever whose model was trained on these same queries (see
            `fine_tune_embeddings`): ``[(query_ids, retriever), ...]``, each query's candidates
            gathered by a retriever built the same way but with a model that never saw it
            (trained on the other folds). Every judged query must be in exactly one group; the
            settings found are applied to ``retriever``. Without it, a fine-tuned model scores
            its own training queries too well and the dense side gets too much weight.

    Returns:
        A `TuningReport`; ``report.retriever`` is the retriever configured with the best setting.

    Raises:
        ValueError: If no query has judgments, the grid is empty or has unknown keys or
            values, the metric is unknown, ``cv`` is not in ``[2, n_queries]``, or
            ``cross_fit`` does not give every judged query exactly one retriever with the same
            sources (or comes with ``pools``).
        TypeError: If ``retriever`` (or a ``cross_fit`` one) is not a `FusionRetriever`, or
            ``cross_fit`` is not a list of ``(query_ids, retriever)`` pairs.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> r = FusionRetriever.from_texts(["the cat sat", "a dog ran", "the cat ran"],
        ...     DeterministicFakeEmbedding(size=8), ids=["1", "2", "3"])
        >>> report = tune(r, {"q1": "cat sat", "q2": "dog"}, {"q1": {"1": 1}, "q2": {"2": 1}},
        ...               grid={"method": ["rrf"], "alpha": [0.0, 1.0]}, show_progress=False)
        >>> report.best["method"], report.best_score
        ('rrf', 1.0)

    """
    if not isinstance(retriever, FusionRetriever):
        raise TypeError(
            f"retriever must be a FusionRetriever (tuning re-fuses its candidate pools), "
            f"got {type(retriever).__name__}"
        )
    parsed = parse_metric(metric)
    metric_name = metric.strip() if isinstance(metric, str) else str(metric)
    if fetch_k is not None:
        _check_int("fetch_k", fetch_k)
    if cv is not None:
        _check_int("cv", cv, 2)
    prepared = qrels if isinstance(qrels, Qrels) else Qrels(qrels)
    settings, depth = _expand_grid(retriever, grid, fetch_k, parsed.k)
    if retriever.max_per_source is not None:
        warnings.warn(
            "tuning ranks candidates without max_per_source (the cap is applied after fusion "
            "and does not change which setting is best in most collections)",
            UserWarning,
            stacklevel=2,
        )
    judged = _judged(queries, prepared)
    if pools is None:
        pools = _gather(
            retriever, queries, judged, depth, cross_fit, show_progress, max_concurrency
        )
    else:
        if cross_fit is not None:
            raise ValueError("give pools or cross_fit, not both (pools are already gathered)")
        if pools.fetch_k < depth:
            raise ValueError(
                f"pools were gathered with fetch_k={pools.fetch_k}, below the fetch_k={depth} "
                "this grid needs; gather them again with a larger fetch_k"
            )
        pools = pools.subset(judged)
    if cv is not None and cv > len(pools):
        raise ValueError(
            f"cv must be at most the number of judged queries ({len(pools)}), got {cv}"
        )

    start = perf_counter()
    per_query = _score(retriever, pools, prepared, settings, parsed, id_key, show_progress)
    seconds = {"gather": pools.seconds, "sweep": perf_counter() - start}
    return _report(
        retriever, metric_name, settings, per_query, list(pools.query_ids), cv, seed, seconds
    )


def _report(
    retriever: FusionRetriever,
    metric: str,
    settings: list[dict[str, Any]],
    per_query: NDArray[np.float64],
    query_ids: list[str],
    cv: int | None,
    seed: int,
    seconds: dict[str, float],
) -> TuningReport:
    """Pick the best setting (first on ties) and configure the retriever with it."""
    means = per_query.mean(axis=1)
    b = _best_index(means)
    best = dict(settings[b])
    return TuningReport(
        metric=metric,
        settings=settings,
        scores=means,
        per_query=per_query,
        query_ids=query_ids,
        best=best,
        best_score=float(means[b]),
        retriever=retriever.model_copy(update=_update_for(best)),
        cv=cross_validate(per_query, settings, cv, seed) if cv is not None else None,
        seconds=seconds,
    )


# ------------------------------------------------------------------------------------ feedback

FEEDBACK_KEYS: tuple[str, ...] = ("feedback_docs", "feedback_weight", "feedback_terms")
"""The settings `tune_feedback` may vary."""

DEFAULT_FEEDBACK_GRID: dict[str, list[Any]] = {
    "feedback_docs": [0, 2, 3, 5],
    "feedback_weight": [round(1 / 3, 4), 0.5],
}
"""The feedback settings searched by default (``feedback_docs=0`` is feedback off)."""


def _feedback_settings(
    retriever: FusionRetriever, grid: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    grid = DEFAULT_FEEDBACK_GRID if grid is None else grid
    if not isinstance(grid, Mapping):
        raise TypeError(f"grid must be a mapping {{setting: [values]}}, got {type(grid).__name__}")
    unknown = [k for k in grid if k not in FEEDBACK_KEYS]
    if unknown or not grid:
        raise ValueError(
            f"grid must vary some of {list(FEEDBACK_KEYS)}, got {list(grid)}; fusion settings "
            "are tuned by tune()"
        )
    keys = list(grid)
    settings: list[dict[str, Any]] = []
    for combo in product(*(_as_list(k, grid[k]) for k in keys)):
        s = dict(zip(keys, combo, strict=True))
        retriever._settings(s)  # validates, and rejects feedback the sources cannot do
        if s.get("feedback_docs", retriever.feedback_docs) == 0:
            s = {"feedback_docs": 0}  # off: weight and terms do not matter
        if s not in settings:
            settings.append(s)
    return settings


def tune_feedback(
    retriever: FusionRetriever,
    queries: Mapping[str, str],
    qrels: QrelsLike,
    *,
    metric: str | Metric = "ndcg@10",
    grid: Mapping[str, Any] | None = None,
    cv: int | None = None,
    show_progress: bool = True,
    seed: int = 0,
    id_key: str | None = None,
    max_concurrency: int | None = None,
    cross_fit: Iterable[tuple[Iterable[str], FusionRetriever]] | None = None,
) -> TuningReport:
    """Decide whether pseudo-relevance feedback helps, and how much of it.

    Feedback changes what is retrieved, so unlike `tune` each setting needs its own retrieval
    pass (two rounds per query): the default grid of 7 settings costs about 13 evaluation
    passes. The fusion settings stay the retriever's: run `tune` first and pass its
    ``report.retriever``. ``feedback_docs=0`` (off) is part of the default grid, so the tuned
    retriever only uses feedback where it wins on the tuning queries.

    Args:
        retriever: A `FusionRetriever` whose sources support feedback (built on a
            ``HybridIndex``).
        queries: ``{query_id: text}``; queries without judgments are dropped with a warning.
        qrels: ``{query_id: {doc_id: relevance}}`` or a `Qrels`.
        metric: What to maximize, e.g. ``"ndcg@10"``.
        grid: ``{setting: [values]}`` over `FEEDBACK_KEYS`; default `DEFAULT_FEEDBACK_GRID`.
        cv: k-fold cross-validation of the choice (as in `tune`).
        show_progress: Show progress bars.
        seed: Seed of the cross-validation shuffle.
        id_key: Read document ids from ``metadata[id_key]`` instead of ``Document.id``.
        max_concurrency: Queries gathered in parallel.
        cross_fit: Out-of-fold retrievers for a model trained on these queries (as in `tune`);
            each feedback setting is scored with their sources.

    Returns:
        A `TuningReport` over the feedback settings; ``report.retriever`` uses the best.

    Raises:
        ValueError: If no query has judgments, the grid is empty, has unknown keys or invalid
            values, the retriever's sources cannot expand queries, or ``cross_fit`` is wrong
            (as in `tune`).
        TypeError: If ``retriever`` is not a `FusionRetriever`, or ``cross_fit`` is malformed.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> r = FusionRetriever.from_texts(
        ...     ["solar panel output", "solar panel cleaning", "wind turbine noise"],
        ...     DeterministicFakeEmbedding(size=8), ids=["1", "2", "3"], k=2)
        >>> report = tune_feedback(r, {"q": "solar"}, {"q": {"1": 1, "2": 1}},
        ...     grid={"feedback_docs": [0, 1]}, show_progress=False)
        >>> [s["feedback_docs"] for s in report.settings], report.best_score
        ([0, 1], 1.0)

    """
    if not isinstance(retriever, FusionRetriever):
        raise TypeError(f"retriever must be a FusionRetriever, got {type(retriever).__name__}")
    parsed = parse_metric(metric)
    metric_name = metric.strip() if isinstance(metric, str) else str(metric)
    if cv is not None:
        _check_int("cv", cv, 2)
    prepared = qrels if isinstance(qrels, Qrels) else Qrels(qrels)
    settings = _feedback_settings(retriever, grid)
    judged = _judged(queries, prepared)
    if cv is not None and cv > len(judged):
        raise ValueError(
            f"cv must be at most the number of judged queries ({len(judged)}), got {cv}"
        )
    if cross_fit is not None:
        cross_fit = _pairs_of(cross_fit)  # read once: used for every setting
    rows: list[NDArray[np.float64]] = []
    seconds = {"gather": 0.0, "sweep": 0.0}
    for setting in settings:
        candidate = retriever.model_copy(update=setting)
        pools = _gather(
            candidate,
            queries,
            judged,
            candidate.fetch_k,
            cross_fit,
            show_progress,
            max_concurrency,
        )
        seconds["gather"] += pools.seconds
        start = perf_counter()
        rows.append(
            score_settings(candidate, pools, prepared, [{}], metric=parsed, id_key=id_key)[0]
        )
        seconds["sweep"] += perf_counter() - start
    return _report(retriever, metric_name, settings, np.vstack(rows), judged, cv, seed, seconds)


# ------------------------------------------------------------------------------------ BM25

BM25_KEYS: tuple[str, ...] = ("k1", "b")
"""The BM25 parameters `tune_bm25` may vary."""

DEFAULT_BM25_GRID: dict[str, list[float]] = {"k1": [0.7, 0.9, 1.2, 1.5], "b": [0.5, 0.75]}
"""The BM25 parameters searched by default (8 pairs; the package default is k1=1.5, b=0.75)."""


def _bm25_setter(retriever: FusionRetriever) -> tuple[dict[str, float], Callable[..., None]]:
    """Return the keyword side's current ``{k1, b}`` and the function that changes them."""
    from langchain_fusion.sources import HybridKeywordSource, OwnBM25Source

    found = [s for s in retriever.sources if isinstance(s, HybridKeywordSource | OwnBM25Source)]
    if len(found) != 1:
        raise ValueError(
            "tune_bm25 needs exactly one keyword side built by this package (a HybridIndex, as "
            "in FusionRetriever.from_documents / from_index, or langchain_fusion.BM25Retriever); "
            f"this retriever has {len(found)} among {retriever.sources}"
        )
    source = found[0]
    if isinstance(source, HybridKeywordSource):
        params = source.index.bm25_params
        return {key: params[key] for key in BM25_KEYS}, source.index.set_bm25_params
    index = source.retriever.bm25_index
    return {"k1": index.k1, "b": index.b}, index.set_params


def _bm25_pairs(grid: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[dict[str, Any]]:
    from langchain_fusion.lexical.scoring import validate_params

    grid = DEFAULT_BM25_GRID if grid is None else grid
    if not isinstance(grid, Mapping):
        raise TypeError(
            f"bm25_grid must be a mapping {{k1/b: [values]}}, got {type(grid).__name__}"
        )
    unknown = [k for k in grid if k not in BM25_KEYS]
    if unknown or not grid:
        raise ValueError(
            f"bm25_grid must vary k1 and/or b, got {list(grid)}; fusion settings go in grid="
        )
    values = {k: _as_list(k, grid[k]) if k in grid else [current[k]] for k in BM25_KEYS}
    pairs = []
    for k1, b in product(values["k1"], values["b"]):
        validate_params(k1=k1, b=b, method="lucene", delta=0.5)
        if {"k1": k1, "b": b} not in pairs:
            pairs.append({"k1": k1, "b": b})
    return pairs


def tune_bm25(
    retriever: FusionRetriever,
    queries: Mapping[str, str],
    qrels: QrelsLike,
    *,
    bm25_grid: Mapping[str, Any] | None = None,
    metric: str | Metric = "ndcg@10",
    grid: Mapping[str, Any] | None = None,
    fetch_k: int | None = None,
    show_progress: bool = True,
    id_key: str | None = None,
    max_concurrency: int | None = None,
    cross_fit: Iterable[tuple[Iterable[str], FusionRetriever]] | None = None,
) -> TuningReport:
    """Choose BM25's ``k1`` and ``b`` together with the fusion settings.

    For each ``(k1, b)`` of ``bm25_grid`` the keyword side is re-parameterized in place (BM25
    applies them at query time: nothing is rebuilt) and `tune` finds the best fusion settings
    for it, at the cost of one retrieval pass per pair. The pair with the best score wins (ties:
    the index's current pair, else the first in grid order) and **stays set on the index**, so
    ``report.retriever`` uses it and saving the index keeps it; if tuning fails, the original
    values are restored. Do not serve queries from the same index while this runs.

    On small collections BM25's parameters can matter more than the fusion's (SciFact:
    ``k1=0.7, b=0.5`` chosen on train moves held-out nDCG@10 from 0.730 to 0.742, see the
    benchmarks). Like `tune`, the scores are measured on the queries given: report the chosen
    retriever on other queries.

    Args:
        retriever: A `FusionRetriever` whose keyword side is this package's (a ``HybridIndex``
            or ``langchain_fusion.BM25Retriever``).
        queries: ``{query_id: text}``; queries without judgments are dropped with a warning.
        qrels: ``{query_id: {doc_id: relevance}}`` or a `Qrels`.
        bm25_grid: ``{"k1": [...], "b": [...]}`` (either key may be left out to keep the
            current value); default `DEFAULT_BM25_GRID`.
        metric: What to maximize, e.g. ``"ndcg@10"``.
        grid: The fusion grid searched for each pair (as in `tune`; default its full grid).
        fetch_k: Candidates gathered per retriever (as in `tune`).
        show_progress: Show a progress bar over the pairs.
        id_key: Read document ids from ``metadata[id_key]`` instead of ``Document.id``.
        max_concurrency: Queries gathered in parallel.
        cross_fit: Out-of-fold retrievers for a model trained on these queries (as in `tune`);
            each pair is set on their keyword sides too while it is scored, and the winner
            stays set there as on ``retriever`` (so that a cross-fitted `tune_feedback` after
            it sees the same BM25); on failure their original values are restored.

    Returns:
        A `TuningReport` with one row per ``(k1, b)``: the pair, the best fusion setting for it
        and its score. ``report.best`` holds ``k1``, ``b`` and the fusion setting.

    Raises:
        ValueError: No keyword side of this package (here or in a ``cross_fit`` retriever), no
            judged query, a bad grid key or value, or a wrong ``cross_fit`` (as in `tune`).
        TypeError: If ``retriever`` is not a `FusionRetriever`, or ``cross_fit`` is malformed.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> r = FusionRetriever.from_texts(
        ...     ["solar panel output", "solar solar solar panel cleaning guide and tips",
        ...      "wind turbine noise"], DeterministicFakeEmbedding(size=8), ids=["1", "2", "3"])
        >>> report = tune_bm25(r, {"q": "solar"}, {"q": {"2": 1}},
        ...     bm25_grid={"k1": [0.0, 1.2]}, grid={"alpha": [0.0]}, show_progress=False)
        >>> [(s["k1"], s["b"]) for s in report.settings], report.scores.tolist()
        ([(0.0, 0.75), (1.2, 0.75)], [0.6309297535714575, 1.0])
        >>> report.best["k1"], r.sources[1].index.bm25_params["k1"]
        (1.2, 1.2)

    """
    if not isinstance(retriever, FusionRetriever):
        raise TypeError(f"retriever must be a FusionRetriever, got {type(retriever).__name__}")
    original, set_params = _bm25_setter(retriever)
    pairs = _bm25_pairs(bm25_grid, original)
    parse_metric(metric)
    if cross_fit is not None:
        cross_fit = _pairs_of(cross_fit)  # read once: tune() goes over it for every pair
    folds = [_bm25_setter(r) for _, r in cross_fit or ()]
    from tqdm.auto import tqdm

    reports: list[TuningReport] = []
    bar = tqdm(total=len(pairs), desc="BM25 k1/b", unit="pair", disable=not show_progress)
    try:
        for pair in pairs:
            for _, set_fold in folds:
                set_fold(**pair)
            set_params(**pair)
            reports.append(
                tune(
                    retriever,
                    queries,
                    qrels,
                    metric=metric,
                    grid=grid,
                    fetch_k=fetch_k,
                    show_progress=False,
                    id_key=id_key,
                    max_concurrency=max_concurrency,
                    cross_fit=cross_fit,
                )
            )
            bar.set_postfix_str(f"k1={_fmt(pair['k1'])} b={_fmt(pair['b'])}")
            bar.update()
    except BaseException:
        for fold_original, set_fold in folds:
            set_fold(**fold_original)
        set_params(**original)
        raise
    finally:
        bar.close()
    scores = np.array([r.best_score for r in reports])
    b = _best_index(scores)
    if original in pairs and scores[pairs.index(original)] >= scores[b] - 1e-12:
        b = pairs.index(original)  # a tie keeps the index as it is
    for _, set_fold in folds:  # later cross-fitted steps (tune_feedback) see the same BM25
        set_fold(**pairs[b])
    set_params(**pairs[b])
    settings = [{**pair, **r.best} for pair, r in zip(pairs, reports, strict=True)]
    return TuningReport(
        metric=reports[b].metric,
        settings=settings,
        scores=scores,
        per_query=np.vstack([r.per_query[_best_index(r.scores)] for r in reports]),
        query_ids=reports[b].query_ids,
        best=dict(settings[b]),
        best_score=float(scores[b]),
        retriever=reports[b].retriever,
        seconds={
            "gather": sum(r.seconds.get("gather", 0.0) for r in reports),
            "sweep": sum(r.seconds.get("sweep", 0.0) for r in reports),
        },
    )
