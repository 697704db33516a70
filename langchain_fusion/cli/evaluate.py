"""``eval`` and ``tune``: measure and tune fusion from the shell.

``eval`` scores BM25 alone (alpha = 0), dense alone (alpha = 1) and fusion methods on a BEIR
split; ``tune`` searches the fusion settings on a train split, reports them on a test split and
can plot the metric against alpha. Both build a `HybridIndex` over the corpus with the local
embedding model (or reuse one with ``--index DIR``), run the retrievers once per query and score
every system on the cached candidates.

The command functions take an ``embeddings`` argument so that tests (and programs) can run them
with any LangChain embedding model.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="langchain-fusion")
    >>> add_commands(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["tune", "--beir", "data/scifact", "--plot", "alpha.png"])
    >>> args.train_split, args.metric, args.plot
    ('train', 'ndcg@10', 'alpha.png')

"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from langchain_fusion.cli._common import (
    add_model_arg,
    check_sources,
    cli_error,
    index_for,
    int_at_least,
    model_embeddings,
    read_labels,
    unit_interval,
)
from langchain_fusion.fusion import METHOD_SHORTHANDS, FusionMethod, Normalization, parse_method

__all__ = ["add_commands", "cmd_eval", "cmd_tune"]


_METHOD_CHOICES = (FusionMethod.CONVEX.value, *METHOD_SHORTHANDS, FusionMethod.RRF.value)


_EVAL_METHODS = tuple(m for m in _METHOD_CHOICES if m != Normalization.MINMAX.value)


def _metric_name(text: str) -> str:
    """``type=`` of ``--metric(s)``: a metric name such as ``ndcg@10``."""
    from langchain_fusion.evaluation.metrics import parse_metric

    try:
        parse_metric(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _check_plot(value: str) -> Path:
    """Check ``--plot`` before any work: matplotlib, the image format and a writable folder."""
    import tempfile

    from langchain_fusion.evaluation.plot import load_matplotlib

    _, canvas_cls = load_matplotlib()  # ImportError naming the ``plot`` extra
    formats = sorted(canvas_cls.get_supported_filetypes())
    target = Path(value).expanduser()
    if target.is_dir():
        raise cli_error(
            f"--plot {value} is a directory; give a file name such as {target}/alpha.png"
        )
    suffix = target.suffix.lower().lstrip(".")
    if suffix not in formats:
        got = f"'.{suffix}'" if suffix else "no suffix"
        others = ", ".join(f for f in formats if f not in ("png", "pdf", "svg"))
        raise cli_error(
            f"--plot {value}: unsupported image format ({got}); end the file name with .png, "
            f".pdf or .svg (also: {others})"
        )
    folder = target.parent
    while not folder.exists():  # the plot creates missing folders: check the nearest existing one
        folder = folder.parent
    if not folder.is_dir():
        raise cli_error(f"cannot write the plot to {target}: {folder} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise cli_error(
            f"cannot write the plot to {target}: cannot create files in {folder} "
            f"({exc.strerror or exc}); choose another --plot path"
        ) from None
    if target.exists() and not os.access(target, os.W_OK):
        raise cli_error(f"cannot write the plot to {target}: the file is read-only")
    return target


def _documents(
    args: argparse.Namespace, embeddings: Embeddings | None, show: bool
) -> tuple[Any, Path | str | None]:
    """Return the index (``--index``/``--beir``) or the PostgreSQL collection (``--store``)."""
    if getattr(args, "store", None):
        from langchain_fusion.cli.postgres import store_for_eval

        return store_for_eval(args, embeddings or model_embeddings(args), show)
    return index_for(args, embeddings, show)


def _check_judged_docs(
    index: Any,
    qrels: Mapping[str, Mapping[str, int]],
    name: str,
    reused: Path | str | None,
    args: argparse.Namespace,
) -> None:
    """Fail when no document judged in ``qrels`` is in the index (labels of another corpus)."""
    judged = sorted({d for docs in qrels.values() for d in docs})
    if not judged or any(d in index for d in judged):
        return  # some judged documents missing from the index can be legitimate
    found = f"none of the {len(judged)} documents judged in {name} (e.g. {', '.join(judged[:3])})"
    if reused is not None and getattr(args, "beir", None):
        raise cli_error(
            f"{found} is in the index {reused}, which was built from another corpus: use a new "
            f"--index DIR (or delete {reused}) so it is rebuilt from {args.beir}"
        )
    if reused is not None:
        raise cli_error(
            f"{found} is in the index {reused}: the labels judge another corpus or use other "
            "document ids; give the index built from the judged corpus (or --beir PATH with a "
            "new --index DIR to build it)"
        )
    raise cli_error(
        f"{found} is in the corpus of {args.beir}: the labels judge another corpus or use other "
        "document ids"
    )


def _warm(index: Any) -> None:
    """Embed one query now, so the model load is not counted in the retrieval time."""
    index.embed_query("warm up")


def _systems(methods: Sequence[str], alpha: float) -> dict[str, dict[str, Any]]:
    systems: dict[str, dict[str, Any]] = {
        "BM25 only (alpha=0)": {"method": "convex", "normalization": "minmax", "alpha": 0.0},
        "dense only (alpha=1)": {"method": "convex", "normalization": "minmax", "alpha": 1.0},
    }
    for m in dict.fromkeys(methods):
        method, implied = parse_method(m)
        setting: dict[str, Any] = {"alpha": alpha, "method": method.value}
        if method is FusionMethod.CONVEX:
            setting["normalization"] = (implied or Normalization.MINMAX).value
        norm = setting.get("normalization")
        label = method.value if norm is None else f"convex {norm}"
        systems[f"fusion {label} (alpha={alpha:g})"] = setting
    return systems


def _table(names: Sequence[str], columns: Mapping[str, Sequence[float]], digits: int = 4) -> str:
    best = {c: max(v) for c, v in columns.items()}
    lines = [
        "| system | " + " | ".join(columns) + " |",
        "|:--|" + "--:|" * len(columns),
    ]
    for i, name in enumerate(names):
        cells = []
        for c, values in columns.items():
            cell = f"{values[i]:.{digits}f}"
            cells.append(f"**{cell}**" if values[i] >= best[c] - 1e-12 else cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _score_systems(
    retriever: Any,
    pools: Any,
    qrels: Mapping[str, Mapping[str, int]],
    systems: Mapping[str, Mapping[str, Any]],
    metrics: Sequence[str],
) -> dict[str, list[float]]:
    from langchain_fusion.evaluation.tune import score_settings

    columns: dict[str, list[float]] = {}
    for metric in metrics:
        scores = score_settings(retriever, pools, qrels, list(systems.values()), metric=metric)
        columns[metric] = [float(row.mean()) for row in scores]
    return columns


def _fetch_k(args: argparse.Namespace, metrics: Sequence[str]) -> int:
    from langchain_fusion.evaluation.metrics import parse_metric

    cutoffs = {m: parse_metric(m).k for m in metrics}
    deepest = max(cutoffs.values())
    given = getattr(args, "fetch_k", None)
    fetch_k = given if given is not None else 100
    if fetch_k < 1:
        raise cli_error(f"--fetch-k must be >= 1, got {fetch_k}")
    if fetch_k < deepest:
        metric = next(m for m, k in cutoffs.items() if k == deepest)
        source = f"--fetch-k {fetch_k}" if given is not None else f"the default {fetch_k}"
        print(
            f"note: fetch_k raised from {source} to {deepest}, the deepest metric cutoff "
            f"({metric})",
            file=sys.stderr,
        )
    return max(fetch_k, deepest)


def cmd_eval(args: argparse.Namespace, embeddings: Embeddings | None = None) -> int:
    """Evaluate BM25 only, dense only and fusion on a BEIR split.

    Args:
        args: Parsed ``eval`` arguments.
        embeddings: Embedding model (default: the local all-MiniLM-L6-v2).

    Returns:
        The exit code (0).

    Example:
        >>> import argparse
        >>> cmd_eval(argparse.Namespace(beir=None, index=None))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        langchain_fusion.cli.CLIError: give --beir PATH ...

    """
    from langchain_fusion.evaluation.tune import gather_pools
    from langchain_fusion.retriever import FusionRetriever

    show = not getattr(args, "quiet", False)
    check_sources(args)
    if not 0.0 <= args.alpha <= 1.0:
        raise cli_error(f"--alpha must be in [0, 1], got {args.alpha}")
    metrics = list(args.metrics)
    fetch_k = _fetch_k(args, metrics)
    queries, qrels, name = read_labels(args, None if args.queries else args.split)
    index, reused = _documents(args, embeddings, show)
    _check_judged_docs(index, qrels, name, reused, args)
    retriever = FusionRetriever.from_index(index)
    _warm(index)
    pools = gather_pools(retriever, queries, qrels, fetch_k=fetch_k, show_progress=show)
    systems = _systems(args.methods, args.alpha)
    columns = _score_systems(retriever, pools, qrels, systems, metrics)
    ms = 1000.0 * pools.seconds / max(len(pools), 1)
    print(f"## {name}: {len(index)} documents, {len(pools)} queries\n")
    print(_table(list(systems), columns))
    print(f"\nretrieval: {pools.seconds:.1f} s ({ms:.1f} ms/query, fetch_k={pools.fetch_k})")
    return 0


def _grid(methods: Sequence[str] | None) -> dict[str, Any] | None:
    if not methods:
        return None
    from langchain_fusion.evaluation.tune import DEFAULT_ALPHAS, DEFAULT_RRF_K

    return {
        "method": list(dict.fromkeys(methods)),
        "alpha": list(DEFAULT_ALPHAS),
        "rrf_k": list(DEFAULT_RRF_K),
        "normalization": ["minmax"],
    }


def _snippet(best: Mapping[str, Any]) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in best.items())
    return f"FusionRetriever.from_index(index, {args})"


_SEARCH_FLAGS = {
    "k": "--k",
    "method": "--method",
    "normalization": "--normalization",
    "alpha": "--alpha",
    "fetch_k": "--fetch-k",
    "rrf_k": "--rrf-k",
    "feedback_docs": "--feedback-docs",
}


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _search_line(best: Mapping[str, Any], index: str | None, defaults: Mapping[str, Any]) -> str:
    """Write the ``langchain-fusion search`` command with these settings, or why there is none.

    Example:
        >>> _search_line({"method": "rrf", "rrf_k": 20, "alpha": 0.3}, "my-index", {})
        'langchain-fusion search my-index "your query" --method rrf --rrf-k 20 --alpha 0.3'
        >>> print(_search_line({"feedback_docs": 2, "feedback_weight": 0.25}, None,
        ...                    {"feedback_weight": 0.5}))  # doctest: +NORMALIZE_WHITESPACE
        (no langchain-fusion search equivalent: feedback_weight=0.25 is only available from
        Python; the command uses feedback_weight=0.5)

    """
    import shlex

    flags: list[str] = []
    python_only: list[str] = []
    defaults_used: list[str] = []
    for key, value in best.items():
        if key == "normalization" and best.get("method") == "rrf":
            continue  # RRF fuses ranks: the normalization does not apply
        flag = _SEARCH_FLAGS.get(key)
        if flag is not None:
            flags.append(f"{flag} {_value(value)}")
        elif key in defaults and defaults[key] == value:
            continue  # the command's default already
        else:
            python_only.append(f"{key}={_value(value)}")
            if key in defaults:
                defaults_used.append(f"{key}={_value(defaults[key])}")
    if python_only:
        note = f"; the command uses {', '.join(defaults_used)}" if defaults_used else ""
        return (
            f"(no langchain-fusion search equivalent: {', '.join(python_only)} "
            f"{'is' if len(python_only) == 1 else 'are'} only available from Python{note})"
        )
    target = shlex.quote(index) if index else "INDEX"
    return " ".join(["langchain-fusion search", target, '"your query"', *flags])


def _print_best(best: Mapping[str, Any], args: argparse.Namespace, retriever: Any) -> None:
    defaults = {
        key: getattr(retriever, key)
        for key in ("rrf_k", "feedback_weight", "feedback_terms", "k", "weights")
        if hasattr(retriever, key)
    }
    print(f"\nbest: {_snippet(best)}")
    print(f"  or: {_search_line(best, getattr(args, 'index', None), defaults)}")


def _k1_b(index: Any) -> dict[str, float]:
    return {key: index.bm25_params[key] for key in ("k1", "b")}


@contextmanager
def _bm25_params(index: Any, params: Mapping[str, float]) -> Iterator[None]:
    """Search ``index`` with these BM25 ``k1``/``b`` inside the block, then restore its own."""
    before = _k1_b(index)
    index.set_bm25_params(**params)
    try:
        yield
    finally:
        index.set_bm25_params(**before)


def _tune_bm25(
    args: argparse.Namespace,
    retriever: Any,
    queries: Any,
    qrels: Any,
    name: str,
    built: Mapping[str, float],
    show: bool,
    cross_fit: Any = None,
) -> dict[str, float]:
    """Choose k1/b on the train queries (``--bm25``), print the table, return the pair."""
    from langchain_fusion.evaluation.tune import tune_bm25

    report = tune_bm25(
        retriever,
        queries,
        qrels,
        metric=args.metric,
        grid=_grid(args.methods),
        fetch_k=args.fetch_k,
        show_progress=show,
        cross_fit=cross_fit,
    )
    chosen = {key: float(report.best[key]) for key in ("k1", "b")}
    print(f"## BM25 k1 and b on {name}, each with its best fusion setting\n")
    print(report.to_markdown(top=None))
    pair = ", ".join(f"{key}={_value(value)}" for key, value in chosen.items())
    flags = " ".join(f"--bm25-{key} {_value(value)}" for key, value in chosen.items())
    was = ", ".join(f"{key}={_value(value)}" for key, value in built.items())
    print(
        f"\nBM25: {pair} (the index was built with {was}). In Python: "
        f"index.set_bm25_params({pair}), then index.save(...); on the command line, build a new "
        f"index with {flags}.\n"
    )
    return chosen


def cmd_tune(args: argparse.Namespace, embeddings: Embeddings | None = None) -> int:
    """Tune fusion on a train split (or label files), report on a test split, plot alpha.

    Args:
        args: Parsed ``tune`` arguments.
        embeddings: Embedding model (default: the local all-MiniLM-L6-v2).

    Returns:
        The exit code (0).

    Example:
        >>> import argparse
        >>> cmd_tune(argparse.Namespace(beir=None, index=None, queries=None))
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        langchain_fusion.cli.CLIError: give --beir PATH ...

    """
    from langchain_fusion.evaluation.beir import available_splits
    from langchain_fusion.evaluation.evaluate import evaluate
    from langchain_fusion.evaluation.metrics import parse_metric
    from langchain_fusion.evaluation.tune import DEFAULT_ALPHAS, gather_pools, tune, tune_feedback
    from langchain_fusion.retriever import FusionRetriever

    show = not getattr(args, "quiet", False)
    check_sources(args)
    if args.cv is not None and args.cv < 2:
        raise cli_error(f"--cv must be >= 2, got {args.cv}")
    parse_metric(args.metric)
    if args.plot:
        _check_plot(args.plot)
    train_queries, train_qrels, train_name = read_labels(
        args, None if args.queries else args.train_split
    )
    if args.cv is not None and args.cv > len(train_queries):
        n = len(train_queries)
        fix = f"use --cv {n} or fewer" if n >= 2 else "drop --cv"
        raise cli_error(
            f"--cv {args.cv} needs at least {args.cv} train queries, but {train_name} has {n} "
            f"judged queries; {fix}"
        )
    folds = None
    if getattr(args, "cross_fit", None) and getattr(args, "store", None):
        raise cli_error(
            "--cross-fit builds one local index per fold and cannot run on --store; tune a "
            "local copy (--index DIR) or drop --cross-fit"
        )
    if getattr(args, "cross_fit", None):  # checked before the index is built
        folds = _fold_groups(args, train_queries, train_qrels, train_name)
    test_split = args.test_split
    if test_split is None and args.beir and not args.queries:
        splits = available_splits(args.beir)
        test_split = "test" if "test" in splits and args.train_split != "test" else None
    test = read_labels(args, test_split) if test_split is not None else None
    cv = args.cv
    if cv is None and test is None and len(train_queries) >= 10:
        cv = 5  # no held-out split: estimate generalization by cross-validation
    index, reused = _documents(args, embeddings, show)
    _check_judged_docs(index, train_qrels, train_name, reused, args)
    if test is not None:
        _check_judged_docs(index, test[1], test[2], reused, args)
    retriever = FusionRetriever.from_index(index)
    cross_fit = None
    if folds:
        cross_fit = _fold_retrievers(folds, index, show)
    _warm(index)
    grid = _grid(args.methods)
    built = _k1_b(index)
    chosen = built
    if getattr(args, "bm25", False):  # the index keeps the chosen pair for what follows
        chosen = _tune_bm25(
            args, retriever, train_queries, train_qrels, train_name, built, show, cross_fit
        )

    report = tune(
        retriever,
        train_queries,
        train_qrels,
        metric=args.metric,
        grid=grid,
        cv=cv,
        fetch_k=args.fetch_k,
        show_progress=show,
        cross_fit=cross_fit,
    )
    print(f"## Tuning on {train_name}: {len(report.query_ids)} queries\n")
    print(report.to_markdown(top=args.top))
    _print_best(report.best, args, retriever)
    feedback = None
    if getattr(args, "feedback", False):
        feedback = tune_feedback(
            report.retriever,
            train_queries,
            train_qrels,
            metric=args.metric,
            cv=cv,
            show_progress=show,
            cross_fit=cross_fit,
        )
        print(f"\n## Pseudo-relevance feedback on {train_name} (tuned fusion kept)\n")
        print(feedback.to_markdown(top=None))
        _print_best({**report.best, **feedback.best}, args, retriever)

    sweep = report
    sweep_name = train_name
    if test is not None:
        test_queries, test_qrels, test_name = test
        depth = max(int(report.best.get("fetch_k", retriever.fetch_k)), retriever.fetch_k)
        with _bm25_params(index, built):  # the reference rows use the index as built
            pools = gather_pools(
                retriever, test_queries, test_qrels, fetch_k=depth, show_progress=show
            )
        defaults = {
            "method": retriever.method,
            "normalization": retriever.normalization,
            "alpha": retriever.alpha,
            "fetch_k": retriever.fetch_k,
        }
        systems = {
            "BM25 only (alpha=0)": {**defaults, "alpha": 0.0},
            "dense only (alpha=1)": {**defaults, "alpha": 1.0},
            "fusion defaults (convex minmax, alpha=0.5)": defaults,
        }
        tuned_label = "tuned on " + train_name
        # the tuned systems that the cached pools cannot score run through evaluate()
        separate: dict[str, Any] = {}
        if chosen == built:
            systems[tuned_label] = dict(report.best)
        else:
            pair = ", ".join(f"{k}={_value(v)}" for k, v in chosen.items())
            separate[f"{tuned_label} + BM25 {pair}"] = report.retriever
        if feedback is not None:
            fb = ", ".join(f"{k}={_value(v)}" for k, v in feedback.best.items())
            separate[f"{tuned_label} + feedback ({fb})"] = feedback.retriever
        columns = _score_systems(retriever, pools, test_qrels, systems, [args.metric])
        for label, tuned_retriever in separate.items():
            systems[label] = {}
            scored = evaluate(
                tuned_retriever,
                test_queries,
                test_qrels,
                metrics=[args.metric],
                show_progress=False,
            )
            for name in columns:
                columns[name].append(scored.metrics[name])
        print(f"\n## {test_name}: {len(pools)} queries\n")
        print(_table(list(systems), columns))
        if args.plot:
            sweep_grid: dict[str, Any] = {}
            for key in ("method", "normalization", "rrf_k"):
                values = list(dict.fromkeys(s[key] for s in report.settings if key in s))
                if values:
                    sweep_grid[key] = values
            sweep_grid["alpha"] = list(DEFAULT_ALPHAS)
            sweep_grid["fetch_k"] = [int(report.best.get("fetch_k", depth))]
            sweep_pools = pools
            if chosen != built:  # the curves of the tuned index
                sweep_pools = gather_pools(
                    retriever, test_queries, test_qrels, fetch_k=depth, show_progress=False
                )
            sweep = tune(
                retriever,
                test_queries,
                test_qrels,
                metric=args.metric,
                grid=sweep_grid,
                pools=sweep_pools,
                show_progress=False,
            )
            sweep_name = test_name
    if args.plot:
        from langchain_fusion.evaluation.plot import plot_alpha_sweep

        path = plot_alpha_sweep(
            sweep,
            args.plot,
            mark=report.best if sweep is not report else None,
            mark_label="tuned on " + train_name if sweep is not report else "best",
            title=f"{sweep_name}: {args.metric} against alpha ({len(sweep.query_ids)} queries)",
        )
        print(f"\nwrote {path}")
    return 0


def _fold_groups(
    args: argparse.Namespace,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    name: str,
) -> list[tuple[Path, list[str]]]:
    """``--cross-fit DIR``: each fold model with the train queries it never saw (checked)."""
    from langchain_fusion.dense.finetune import fine_tuning_record

    folder = Path(args.cross_fit).expanduser()
    models = (
        sorted(p for p in folder.iterdir() if (p / "config.json").is_file())
        if folder.is_dir()
        else []
    )
    records = [fine_tuning_record(p) for p in models]
    if len(models) < 2 or None in records:
        raise cli_error(
            f"--cross-fit {folder} must hold at least two fold models written by "
            "'langchain-fusion fine-tune --folds K' (each with its fine_tuning.json)"
        )
    seen = [set(r["query_ids"]) for r in records if r is not None]
    groups: list[list[str]] = [[] for _ in models]
    for q in queries:
        unseen = [i for i, ids in enumerate(seen) if q not in ids]
        if not any(rel > 0 for rel in qrels.get(q, {}).values()):
            unseen = unseen[:1]  # nothing to train on: no model saw it, any can score it
        if len(unseen) != 1:
            raise cli_error(
                f"train query {q!r} of {name} was left out by {len(unseen)} of the {len(models)} "
                f"fold models in {folder}, not exactly one: --cross-fit needs the fold models of "
                "'fine-tune --folds' run on these same train queries"
            )
        groups[unseen[0]].append(q)
    return list(zip(models, groups, strict=True))


def _fold_retrievers(
    folds: Sequence[tuple[Path, list[str]]], index: Any, show: bool
) -> list[tuple[list[str], Any]]:
    """One retriever per fold model, over ``index``'s documents, for ``cross_fit=``."""
    from langchain_fusion.dense.embeddings import LocalEmbeddings
    from langchain_fusion.index import HybridIndex
    from langchain_fusion.retriever import FusionRetriever

    documents = index.documents(index.ids)
    bm25 = index.bm25_params
    pairs = []
    for i, (model, group) in enumerate(folds):
        print(f"indexing with fold model {i + 1}/{len(folds)} ({model.name})", file=sys.stderr)
        fold_index = HybridIndex(  # the keyword side as the tuned index's; only the model differs
            LocalEmbeddings(model_path=model),
            tokenizer=index.tokenizer,
            k1=bm25["k1"],
            b=bm25["b"],
            bm25_method=bm25["method"],
            bm25_delta=bm25["delta"],
        )
        fold_index.add_documents(documents, show_progress=show)
        pairs.append((group, FusionRetriever.from_index(fold_index)))
    return pairs


def _common(p: argparse.ArgumentParser, methods_default: str) -> None:
    p.add_argument(
        "--beir", metavar="PATH", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/"
    )
    p.add_argument(
        "--index",
        metavar="DIR",
        help="reuse this saved index (built from --beir and saved here if missing or empty)",
    )
    add_model_arg(p)
    from langchain_fusion.cli.postgres import add_store_args

    add_store_args(p)  # --store DSN|embedded: evaluate the PostgreSQL store (filled from --beir)
    p.add_argument("--queries", metavar="FILE", help="queries.jsonl of your own labels")
    p.add_argument("--qrels", metavar="FILE", help="qrels .tsv of your own labels")
    p.add_argument(
        "--fetch-k",
        dest="fetch_k",
        type=int_at_least(1),
        help="candidates per retriever (default 100)",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        choices=_METHOD_CHOICES,
        metavar="METHOD",
        help=f"fusion methods among {', '.join(_METHOD_CHOICES)} (default {methods_default})",
    )
    p.add_argument("--bm25-k1", dest="bm25_k1", type=float, help="BM25 k1 when indexing")
    p.add_argument("--bm25-b", dest="bm25_b", type=float, help="BM25 b when indexing")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_commands(subparsers: Any) -> None:
    """Add the ``eval`` and ``tune`` subcommands to the ``langchain-fusion`` parser.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser()
        >>> add_commands(parser.add_subparsers(dest="command"))
        >>> parser.parse_args(["eval", "--beir", "x", "--alpha", "0.3"]).alpha
        0.3

    """
    p = subparsers.add_parser(
        "eval",
        help="evaluate BM25, dense and fusion on a BEIR split",
        description=cmd_eval.__doc__.splitlines()[0] if cmd_eval.__doc__ else None,
        epilog="example: langchain-fusion eval --beir data/scifact --split test",
    )
    _common(p, " ".join(_EVAL_METHODS))
    p.add_argument("--split", default="test", help="qrels split to evaluate (default test)")
    p.add_argument(
        "--alpha", type=unit_interval, default=0.5, help="fusion alpha in [0, 1] (default 0.5)"
    )
    p.add_argument(
        "--metrics",
        nargs="+",
        type=_metric_name,
        default=["ndcg@10", "recall@100"],
        help="metrics (default ndcg@10 recall@100)",
    )
    p.set_defaults(func=cmd_eval, methods=list(_EVAL_METHODS))

    p = subparsers.add_parser(
        "tune",
        help="tune fusion settings on a train split and report them on a test split",
        description=cmd_tune.__doc__.splitlines()[0] if cmd_tune.__doc__ else None,
        epilog=(
            "examples:\n"
            "  langchain-fusion tune --beir data/scifact --plot alpha.png\n"
            "  langchain-fusion tune --index my-index --queries q.jsonl --qrels qrels.tsv"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p, "convex with minmax, zscore and dbsf, and rrf")
    p.add_argument("--train-split", default="train", help="split to tune on (default train)")
    p.add_argument(
        "--test-split", default=None, help="split to report on (default: test, when it exists)"
    )
    p.add_argument(
        "--metric",
        type=_metric_name,
        default="ndcg@10",
        help="metric to maximize (default ndcg@10)",
    )
    p.add_argument(
        "--cv",
        type=int_at_least(2),
        metavar="K",
        help="also K-fold cross-validate the tuning (K >= 2)",
    )
    p.add_argument(
        "--plot", metavar="PNG", help="write the metric-vs-alpha plot here (.png, .pdf or .svg)"
    )
    p.add_argument("--top", type=int_at_least(1), default=10, help="settings shown (default 10)")
    p.add_argument(
        "--bm25",
        action="store_true",
        help="first choose BM25 k1 and b on the train split, each pair with its best fusion "
        "(8 pairs, one retrieval pass each)",
    )
    p.add_argument(
        "--feedback",
        action="store_true",
        help="then choose pseudo-relevance feedback on the train split (about 13 more passes)",
    )
    p.add_argument(
        "--cross-fit",
        dest="cross_fit",
        metavar="DIR",
        help="fold models from 'fine-tune --folds' (--model fine-tuned on the train split): each "
        "train query is scored by the fold model that never saw it (indexes the corpus once per "
        "fold)",
    )
    p.set_defaults(func=cmd_tune)
