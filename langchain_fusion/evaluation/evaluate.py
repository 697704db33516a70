"""Evaluate any LangChain retriever (or a precomputed run) against relevance judgments."""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever, RetrieverLike
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel

from langchain_fusion.evaluation.checks import check_int as _check_int
from langchain_fusion.evaluation.checks import examples as _examples
from langchain_fusion.evaluation.metrics import (
    Metric,
    Qrels,
    QrelsLike,
    Run,
    _as_qrels,
    _metric_arrays,
    _parse_metrics,
    _ranking,
)

__all__ = ["EvaluationReport", "compare", "evaluate", "evaluate_run", "paired_p_value"]

DEFAULT_METRICS = ("ndcg@10", "recall@100")


@dataclass
class EvaluationReport:
    """What `evaluate` measured: mean and per-query metrics, timing and the run itself.

    Attributes:
        metrics: ``{metric: mean over the evaluated queries}``.
        per_query: ``{query_id: {metric: value}}``.
        n_queries: How many queries were evaluated.
        seconds: Wall-clock time spent retrieving (``None`` for a precomputed run).
        run: ``{query_id: [doc_id, ...]}``, the retrieved ids best first (rank = position + 1).
        k: How many documents were requested per query (``None`` for a precomputed run).

    Example:
        >>> report = evaluate_run({"q1": ["d1", "d2"], "q2": ["d3"]},
        ...                       {"q1": {"d2": 1}, "q2": {"d3": 1}}, metrics=["mrr@10"])
        >>> report.metrics
        {'mrr@10': 0.75}
        >>> report.per_query["q1"]
        {'mrr@10': 0.5}
        >>> print(report)
        | metric | value |
        |:--|--:|
        | mrr@10 | 0.7500 |
        <BLANKLINE>
        2 queries

    """

    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]] = field(repr=False)
    n_queries: int
    seconds: float | None
    run: dict[str, list[str]] = field(repr=False)
    k: int | None = None

    @property
    def ms_per_query(self) -> float | None:
        """Average wall-clock milliseconds per query (throughput, concurrency included), or None.

        Example:
            >>> EvaluationReport({}, {}, n_queries=4, seconds=0.5, run={}).ms_per_query
            125.0

        """
        if self.seconds is None or self.n_queries == 0:
            return None
        return 1000.0 * self.seconds / self.n_queries

    def to_markdown(self, digits: int = 4) -> str:
        """Render the mean metrics as a Markdown table, followed by the query count and timing.

        Args:
            digits: Decimal places for the metric values.

        Returns:
            The table as a string.

        Example:
            >>> report = EvaluationReport({"ndcg@10": 0.5}, {}, n_queries=3, seconds=0.3, run={})
            >>> print(report.to_markdown(digits=2))
            | metric | value |
            |:--|--:|
            | ndcg@10 | 0.50 |
            <BLANKLINE>
            3 queries, 0.30 s (100.0 ms/query)

        """
        lines = ["| metric | value |", "|:--|--:|"]
        lines += [f"| {name} | {value:.{digits}f} |" for name, value in self.metrics.items()]
        summary = f"{self.n_queries} queries"
        ms = self.ms_per_query
        if self.seconds is not None and ms is not None:
            summary += f", {self.seconds:.2f} s ({ms:.1f} ms/query)"
        return "\n".join([*lines, "", summary])

    def __str__(self) -> str:
        return self.to_markdown()


def paired_p_value(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided paired t-test p-value; NaN when undefined (fewer than 2 pairs, no variance).

    Same value as ``scipy.stats.ttest_rel(a, b).pvalue``, via ``scipy.special.stdtr`` (importing
    ``scipy.stats`` takes seconds).

    Example:
        >>> paired_p_value([1.0], [0.0])
        nan

    """
    from scipy.special import stdtr

    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    n = diff.size
    if n < 2:
        return math.nan
    sd = float(diff.std(ddof=1))
    if sd == 0.0 or not math.isfinite(sd):
        return math.nan
    t = float(diff.mean()) / (sd / math.sqrt(n))
    return float(2.0 * stdtr(n - 1, -abs(t)))


_paired_p_value = paired_p_value  # the former name


def compare(
    reports: Mapping[str, EvaluationReport],
    *,
    baseline: str | None = None,
    alpha: float = 0.05,
    digits: int = 4,
) -> str:
    """Compare several systems in a Markdown table: one row each, the best value per metric in bold.

    With ``baseline``, each metric of the other systems is tested against the baseline with a
    two-sided paired t-test over their common queries; a ``†`` marks ``p < alpha``.

    Args:
        reports: ``{system name: EvaluationReport}``, in the row order wanted.
        baseline: Name of the system to test the others against, or None for no test.
        alpha: Significance level for the ``†`` mark.
        digits: Decimal places for the metric values.

    Returns:
        The table (plus a footnote when ``baseline`` is given).

    Raises:
        ValueError: If ``reports`` is empty, ``baseline`` is not one of its keys or ``alpha`` is not
            in (0, 1).
        TypeError: If a value is not an `EvaluationReport`.

    Example:
        >>> qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}}
        >>> a = evaluate_run({"q1": ["d1"], "q2": ["d9", "d2"]}, qrels, metrics=["mrr@10"])
        >>> b = evaluate_run({"q1": ["d9", "d1"], "q2": ["d9", "d2"]}, qrels, metrics=["mrr@10"])
        >>> print(compare({"a": a, "b": b}))
        | system | mrr@10 | ms/query |
        |:--|--:|--:|
        | a | **0.7500** | - |
        | b | 0.5000 | - |

    """
    if not reports:
        msg = "reports must hold at least one {name: EvaluationReport}, got an empty mapping"
        raise ValueError(msg)
    for name, report in reports.items():
        if not isinstance(report, EvaluationReport):
            msg = f"reports[{name!r}] must be an EvaluationReport, got {type(report).__name__}"
            raise TypeError(msg)
    if baseline is not None and baseline not in reports:
        msg = f"baseline must be one of the report names {list(reports)}, got {baseline!r}"
        raise ValueError(msg)
    if not 0.0 < alpha < 1.0:
        msg = f"alpha must be in (0, 1), got {alpha!r}"
        raise ValueError(msg)

    columns = list(dict.fromkeys(m for report in reports.values() for m in report.metrics))
    best = {m: max(r.metrics[m] for r in reports.values() if m in r.metrics) for m in columns}
    header = ["system", *columns, "ms/query"]
    lines = ["| " + " | ".join(header) + " |", "|:--|" + "--:|" * (len(header) - 1)]
    base = reports[baseline] if baseline is not None else None
    for name, report in reports.items():
        cells = [name]
        for m in columns:
            if m not in report.metrics:
                cells.append("-")
                continue
            value = report.metrics[m]
            cell = f"{value:.{digits}f}"
            if math.isclose(value, best[m], rel_tol=0.0, abs_tol=10.0 ** -(digits + 2)):
                cell = f"**{cell}**"
            if base is not None and report is not base and m in base.metrics:
                common = [q for q in report.per_query if q in base.per_query]
                p = paired_p_value(
                    [report.per_query[q][m] for q in common],
                    [base.per_query[q][m] for q in common],
                )
                if p < alpha:
                    cell += "†"
            cells.append(cell)
        ms = report.ms_per_query
        cells.append("-" if ms is None else f"{ms:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    if baseline is not None:
        lines += ["", f"† paired t-test against {baseline!r}, p < {alpha:g}"]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Running a retriever
# --------------------------------------------------------------------------------------------------


def _bind_k(retriever: RetrieverLike, k: int) -> tuple[RetrieverLike, dict[str, Any], bool]:
    """Make ``retriever`` return ``k`` documents: ``(runnable, invoke kwargs, whether k was set)``.

    In order of preference:

    1. ``_get_relevant_documents`` takes a ``k`` argument: pass ``k=`` through ``batch``.
    2. It takes ``**kwargs`` and the retriever has a ``k`` field (FusionRetriever): pass ``k=``, so
       the retriever is not copied (a copy could share resources such as thread pools).
    3. A ``k`` field (langchain_community's BM25Retriever): set it on a copy.
    4. A ``search_kwargs`` dict (``VectorStoreRetriever``): set ``k`` (and, for MMR, a ``fetch_k``
       of at least ``k``) on a copy.
    """
    fields = type(retriever).model_fields if isinstance(retriever, BaseModel) else {}
    has_k_field = "k" in fields and isinstance(getattr(retriever, "k", None), int)
    if isinstance(retriever, BaseRetriever):
        parameters = inspect.signature(type(retriever)._get_relevant_documents).parameters
        takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        if "k" in parameters or (takes_kwargs and has_k_field):
            return retriever, {"k": k}, True
    if has_k_field and isinstance(retriever, BaseModel):
        return retriever.model_copy(update={"k": k}), {}, True
    search_kwargs = getattr(retriever, "search_kwargs", None) if "search_kwargs" in fields else None
    if isinstance(retriever, BaseModel) and isinstance(search_kwargs, dict):
        update: dict[str, Any] = {**search_kwargs, "k": k}
        if getattr(retriever, "search_type", None) == "mmr":
            update["fetch_k"] = max(int(search_kwargs.get("fetch_k", 20)), k)
        return retriever.model_copy(update={"search_kwargs": update}), {}, True
    return retriever, {}, False


def _document_ids(result: object, query_id: str, id_key: str | None) -> list[str]:
    """Distinct ids of the documents returned for one query, best first."""
    if not isinstance(result, list):
        msg = (
            f"the retriever returned {type(result).__name__} for query {query_id!r}; "
            "expected a list of Documents"
        )
        raise TypeError(msg)
    ids: list[str] = []
    for rank, doc in enumerate(result, start=1):
        if not isinstance(doc, Document):
            msg = (
                f"the retriever returned {type(doc).__name__} at rank {rank} for query "
                f"{query_id!r}; expected a Document"
            )
            raise TypeError(msg)
        if id_key is None:
            if doc.id is None or doc.id == "":
                msg = (
                    f"the document at rank {rank} for query {query_id!r} has no id "
                    f"(Document.id is {doc.id!r}); set Document.id on the indexed documents "
                    "(load_beir does) or pass id_key='<field>' to read the id from "
                    f"Document.metadata (this document's metadata keys: {sorted(doc.metadata)})"
                )
                raise ValueError(msg)
            ids.append(doc.id)
        else:
            if id_key not in doc.metadata:
                msg = (
                    f"id_key={id_key!r} is not in the metadata of the document at rank {rank} "
                    f"for query {query_id!r} (its metadata keys: {sorted(doc.metadata)}); "
                    "pass id_key naming a field every document has, or id_key=None for Document.id"
                )
                raise ValueError(msg)
            ids.append(str(doc.metadata[id_key]))
    return list(dict.fromkeys(ids))


def _warn_if_ids_unknown(run: Mapping[str, list[str]], qrels: Qrels) -> None:
    """Warn when no retrieved id is judged at all: almost always an id mismatch."""
    judged = qrels._judgments
    retrieved = [d for q, docs in run.items() for d in docs]
    if not retrieved:
        warnings.warn(
            "the retriever returned no documents for any query; every metric is 0",
            UserWarning,
            stacklevel=3,
        )
        return
    if any(d in judged.get(q, {}) for q, docs in run.items() for d in docs):
        return
    judged_ids = (d for docs in judged.values() for d in docs)
    warnings.warn(
        "none of the retrieved document ids appears in qrels (retrieved e.g. "
        f"{_examples(retrieved)}; judged e.g. {_examples(judged_ids)}); check that Document.id "
        "(or metadata[id_key]) holds the corpus ids",
        UserWarning,
        stacklevel=3,
    )


def _report(
    run: dict[str, list[str]],
    qrels: Qrels,
    metrics: Sequence[str | Metric],
    *,
    seconds: float | None,
    k: int | None,
) -> EvaluationReport:
    arrays = _metric_arrays(run, qrels, metrics)
    per_query = {
        query_id: {name: float(values[i]) for name, values in arrays.items()}
        for i, query_id in enumerate(qrels.query_ids)
    }
    means = {name: math.fsum(values.tolist()) / values.size for name, values in arrays.items()}
    return EvaluationReport(
        metrics=means,
        per_query=per_query,
        n_queries=len(qrels),
        seconds=seconds,
        run=run,
        k=k,
    )


def evaluate(
    retriever: RetrieverLike,
    queries: Mapping[str, str],
    qrels: QrelsLike,
    *,
    metrics: str | Sequence[str | Metric] = DEFAULT_METRICS,
    k: int | None = None,
    id_key: str | None = None,
    batch_size: int = 32,
    max_concurrency: int | None = None,
    show_progress: bool = True,
) -> EvaluationReport:
    """Run a retriever on judged queries and measure it.

    The retriever is asked for ``k`` documents: through a ``k`` argument of its
    ``_get_relevant_documents`` (e.g. FusionRetriever, this package's BM25Retriever), else by
    setting its ``k`` field (langchain_community's BM25Retriever) or ``search_kwargs["k"]``
    (``VectorStoreRetriever``) on a copy; the retriever itself is never modified. Otherwise it
    returns what it is configured to return, and a warning says so when that is fewer than ``k``.
    Results are cut at ``k``, and repeated ids (e.g. several chunks of one document with
    ``id_key``) count once, at their best rank.

    Queries run through ``retriever.batch`` in chunks of ``batch_size`` (in parallel up to
    ``max_concurrency``) with a progress bar.

    Args:
        retriever: Any LangChain retriever (a runnable from query string to list of Documents).
        queries: ``{query_id: text}``. Queries without judgments in ``qrels`` are skipped with a
            warning.
        qrels: ``{query_id: {doc_id: relevance}}`` or a prepared `Qrels`.
        metrics: Metric names, see `parse_metric`.
        k: Documents to request per query; default: the largest metric cutoff.
        id_key: Read the document id from ``Document.metadata[id_key]`` instead of ``Document.id``.
        batch_size: Queries per ``batch`` call (and progress bar step).
        max_concurrency: Maximum parallel calls inside a batch (None: LangChain's default).
        show_progress: Show a tqdm progress bar.

    Returns:
        An `EvaluationReport`.

    Raises:
        ValueError: On an invalid argument, when no query has judgments, or when a returned document
            has no id (or no ``metadata[id_key]``).
        TypeError: If the retriever returns something other than a list of Documents.

    Example:
        >>> from langchain_core.documents import Document
        >>> from langchain_core.runnables import RunnableLambda
        >>> docs = [Document("cats purr", id="d1"), Document("dogs bark", id="d2")]
        >>> retriever = RunnableLambda(
        ...     lambda q: sorted(docs, key=lambda d: -sum(w in d.page_content for w in q.split()))
        ... )
        >>> report = evaluate(retriever, {"q1": "dogs", "q2": "cats"},
        ...                   {"q1": {"d2": 1}, "q2": {"d1": 1}},
        ...                   metrics=["ndcg@2", "mrr@2"], show_progress=False)
        >>> report.metrics
        {'ndcg@2': 1.0, 'mrr@2': 1.0}
        >>> report.run
        {'q1': ['d2', 'd1'], 'q2': ['d1', 'd2']}

    """
    parsed = _parse_metrics(metrics)
    max_cutoff = max(metric.k for _, metric in parsed)
    if k is None:
        k = max_cutoff
    _check_int("k", k)
    _check_int("batch_size", batch_size)
    if max_concurrency is not None:
        _check_int("max_concurrency", max_concurrency)
    if not isinstance(queries, Mapping):
        msg = f"queries must be a mapping {{query_id: text}}, got {type(queries).__name__}"
        raise TypeError(msg)
    for query_id, text in queries.items():
        if not isinstance(text, str):
            msg = f"queries[{query_id!r}] must be a string, got {type(text).__name__}"
            raise TypeError(msg)
    if k < max_cutoff:
        cut = [name for name, metric in parsed if metric.k > k]
        warnings.warn(
            f"k={k} is below the cutoff of {', '.join(cut)}; those metrics only see {k} documents",
            UserWarning,
            stacklevel=2,
        )

    prepared = _as_qrels(qrels)
    judged = [query_id for query_id in queries if query_id in prepared]
    if not judged:
        msg = (
            f"no query has judgments; none of the {len(queries)} query ids "
            f"({_examples(queries)}) is in qrels ({_examples(prepared.query_ids)}); "
            "pass the qrels of the same split as the queries"
        )
        raise ValueError(msg)
    if len(judged) < len(queries):
        skipped = [query_id for query_id in queries if query_id not in prepared]
        warnings.warn(
            f"{len(skipped)} of {len(queries)} queries have no judgments in qrels and are skipped "
            f"({_examples(skipped)})",
            UserWarning,
            stacklevel=2,
        )
    if len(judged) < len(prepared):
        prepared = prepared.subset(judged)

    runnable, kwargs, k_is_set = _bind_k(retriever, k)
    config: RunnableConfig | None = (
        None if max_concurrency is None else {"max_concurrency": max_concurrency}
    )
    from tqdm.auto import tqdm

    run: dict[str, list[str]] = {}
    start = perf_counter()
    with tqdm(total=len(judged), desc="Evaluating", unit="query", disable=not show_progress) as bar:
        for offset in range(0, len(judged), batch_size):
            chunk = judged[offset : offset + batch_size]
            results = runnable.batch(
                [queries[query_id] for query_id in chunk],
                config=config,
                return_exceptions=True,
                **kwargs,
            )
            for query_id, result in zip(chunk, results, strict=True):
                if isinstance(result, BaseException):
                    if hasattr(result, "add_note"):
                        result.add_note(f"(while retrieving query {query_id!r})")
                    raise result
                run[query_id] = _document_ids(result, query_id, id_key)[:k]
            bar.update(len(chunk))
    seconds = perf_counter() - start

    longest = max(len(ranked) for ranked in run.values())
    if not k_is_set and longest < k:
        warnings.warn(
            f"could not ask {type(retriever).__name__} for k={k} documents (it has no k parameter, "
            f"k field or search_kwargs) and it returned at most {longest}; metrics with a cutoff "
            f"above {longest} are capped: configure the retriever to return {k} documents",
            UserWarning,
            stacklevel=2,
        )
    _warn_if_ids_unknown(run, prepared)
    return _report(run, prepared, [key for key, _ in parsed], seconds=seconds, k=k)


def evaluate_run(
    run: Run,
    qrels: QrelsLike,
    metrics: str | Sequence[str | Metric] = DEFAULT_METRICS,
) -> EvaluationReport:
    """Measure a precomputed run (e.g. loaded from a TREC run file or produced by another tool).

    Every judged query of ``qrels`` is evaluated; a judged query missing from the run scores 0
    (with a warning). Queries of the run without judgments are ignored.

    Args:
        run: ``{query_id: [doc_id, ...]}`` best first, or ``{query_id: {doc_id: score}}``.
        qrels: ``{query_id: {doc_id: relevance}}`` or a prepared `Qrels`.
        metrics: Metric names, see `parse_metric`.

    Returns:
        An `EvaluationReport` with ``seconds=None`` and ``run`` holding the ranked ids up to
        the largest cutoff.

    Raises:
        ValueError: If a metric is unknown or no query of the run is judged in ``qrels``.

    Example:
        >>> report = evaluate_run({"q1": {"d1": 0.2, "d2": 0.9}}, {"q1": {"d1": 1}}, ["ndcg@10"])
        >>> round(report.metrics["ndcg@10"], 4), report.run
        (0.6309, {'q1': ['d2', 'd1']})

    """
    parsed = _parse_metrics(metrics)
    depth = max(metric.k for _, metric in parsed)
    if not isinstance(run, Mapping):
        msg = (
            "run must be a mapping {query_id: ranked doc ids or {doc_id: score}}, "
            f"got {type(run).__name__}"
        )
        raise TypeError(msg)
    prepared = _as_qrels(qrels)
    present = [query_id for query_id in prepared.query_ids if query_id in run]
    if not present:
        msg = (
            f"no query of the run is judged in qrels: run has {_examples(run)}, qrels has "
            f"{_examples(prepared.query_ids)}; check that both use the same query ids"
        )
        raise ValueError(msg)
    if len(present) < len(prepared):
        missing = [query_id for query_id in prepared.query_ids if query_id not in run]
        warnings.warn(
            f"{len(missing)} of {len(prepared)} judged queries are missing from the run and "
            f"score 0 ({_examples(missing)})",
            UserWarning,
            stacklevel=2,
        )
    ranked = {query_id: _ranking(query_id, run[query_id], depth) for query_id in present}
    _warn_if_ids_unknown(ranked, prepared)
    return _report(ranked, prepared, [key for key, _ in parsed], seconds=None, k=None)
