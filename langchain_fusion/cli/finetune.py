"""``fine-tune``: fine-tune the local embedding model on judged queries."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_fusion.cli._common import (
    check_judged_docs_in,
    check_sources,
    cli_error,
    folds_dir_of,
    index_for,
    int_at_least,
    model_embeddings,
    positive_float,
    read_labels,
)

__all__ = ["add_commands", "cmd_fine_tune"]


def cmd_fine_tune(args: argparse.Namespace) -> int:
    """Fine-tune the local embedding model on judged queries (a BEIR split or your labels).

    The documents come from ``--beir`` (its corpus) or a saved ``--index``; the labels from
    ``--beir`` (``--split``, default train) or ``--queries``/``--qrels``. The model is written to
    ``--out``; give that directory as ``--model`` to ``index``, ``search``, ``eval`` and ``tune``.

    Args:
        args: Parsed ``fine-tune`` arguments.

    Returns:
        The exit code (0).

    Example:
        >>> import argparse
        >>> cmd_fine_tune(argparse.Namespace(beir=None, index=None, queries=None, out="m"))
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        langchain_fusion.cli.CLIError: give --beir PATH ...

    """
    from langchain_fusion.dense.finetune import fine_tune_embeddings, occupied, training_pairs

    show = not getattr(args, "quiet", False)
    check_sources(args)
    out = Path(args.out).expanduser()
    folds_dir = folds_dir_of(out)
    k = getattr(args, "folds", None)
    for target, flag in [(out, "--out")] + ([(folds_dir, "--folds")] if k else []):
        if occupied(target) and not args.overwrite:
            raise cli_error(
                f"{flag}: {target} exists and is not empty; choose a new --out or add --overwrite"
            )
    if args.model is not None:
        model_embeddings(args)  # a model directory, checked before any work
    queries, qrels, name = read_labels(args, None if args.queries else args.split)
    if args.beir:
        from langchain_fusion.evaluation.beir import load_corpus

        documents = load_corpus(args.beir)
        where = str(args.beir)
    else:
        index, _ = index_for(args, None, show)
        documents = index.documents(index.ids)
        where = str(args.index)
    check_judged_docs_in(documents, qrels, name, where)
    pairs = training_pairs(queries, qrels, documents, max_per_query=args.max_pairs_per_query)
    ids = sorted(q for q in qrels if q in queries)
    if k is not None and k > len(ids):
        raise cli_error(f"--folds {k} needs at least {k} judged queries; {name} has {len(ids)}")
    steps = args.epochs * -(-len(pairs) // args.batch_size)
    more = f", then {k} fold models of about {(k - 1) * 100 // k}% of it each" if k else ""
    print(
        f"fine-tuning on {len(pairs)} (query, passage) pairs of {name} ({len(ids)} queries, "
        f"{len(documents)} documents): {args.epochs} epoch(s), {steps} steps{more}",
        file=sys.stderr,
    )

    def train(subset: Sequence[str], target: Path) -> None:
        fine_tune_embeddings(
            {q: queries[q] for q in subset},
            {q: qrels[q] for q in subset},
            documents,
            target,
            model_path=args.model,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            max_pairs_per_query=args.max_pairs_per_query,
            overwrite=args.overwrite,
            show_progress=show,
        )

    start = time.perf_counter()
    train(ids, out)
    print(f"wrote the fine-tuned model to {out} in {time.perf_counter() - start:.0f} s")
    if k is not None:
        from langchain_fusion.evaluation.tune import kfold

        start = time.perf_counter()
        for i, held in enumerate(kfold(len(ids), k)):
            left_out = {ids[j] for j in held}
            train([q for q in ids if q not in left_out], folds_dir / f"fold-{i}")
        for stale in folds_dir.glob("fold-*"):  # from an earlier run with more folds
            if stale.name not in {f"fold-{i}" for i in range(k)}:
                shutil.rmtree(stale)
        print(f"wrote {k} fold models to {folds_dir} in {time.perf_counter() - start:.0f} s")
    tune_hint = f" --cross-fit {folds_dir}" if k else ""
    print(
        f"use it with --model {out} (index again: vectors of two models do not mix); measure it "
        f"on queries it was not trained on, e.g.\n  langchain-fusion eval --beir PATH "
        f"--split test --model {out}\nand tune on its own train queries with\n"
        f"  langchain-fusion tune --beir PATH --model {out}{tune_hint}"
    )
    return 0


def add_commands(subparsers: Any) -> None:
    """Add the ``fine-tune`` subcommand to the ``langchain-fusion`` parser.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser()
        >>> add_commands(parser.add_subparsers(dest="command"))
        >>> parser.parse_args(["fine-tune", "--beir", "x", "--out", "m"]).epochs
        3

    """
    p = subparsers.add_parser(
        "fine-tune",
        help="fine-tune the local embedding model on judged queries",
        description=cmd_fine_tune.__doc__.split("\n\n")[0] if cmd_fine_tune.__doc__ else None,
        epilog=(
            "examples:\n"
            "  langchain-fusion fine-tune --beir data/scifact --out scifact-minilm\n"
            "  langchain-fusion fine-tune --index my-index --queries q.jsonl --qrels qrels.tsv "
            "--out my-minilm"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--beir", metavar="PATH", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/"
    )
    p.add_argument("--index", metavar="DIR", help="take the documents from this saved index")
    p.add_argument("--queries", metavar="FILE", help="queries.jsonl of your own labels")
    p.add_argument("--qrels", metavar="FILE", help="qrels .tsv of your own labels")
    p.add_argument("--split", default="train", help="BEIR qrels split to train on (default train)")
    p.add_argument("--out", required=True, metavar="DIR", help="where to write the model")
    p.add_argument(
        "--model",
        metavar="DIR",
        help="model to start from (default: the bundled all-MiniLM-L6-v2)",
    )
    p.add_argument("--epochs", type=int_at_least(1), default=3, help="passes (default 3)")
    p.add_argument(
        "--batch-size",
        dest="batch_size",
        type=int_at_least(2),
        default=32,
        help="pairs per step, the in-batch negatives plus one (default 32)",
    )
    p.add_argument(
        "--learning-rate",
        dest="learning_rate",
        type=positive_float,
        default=2e-5,
        help="peak AdamW learning rate (default 2e-5)",
    )
    p.add_argument(
        "--max-pairs-per-query",
        dest="max_pairs_per_query",
        type=int_at_least(1),
        metavar="N",
        help="train on at most N relevant documents per query (default: all)",
    )
    p.add_argument(
        "--folds",
        type=int_at_least(2),
        metavar="K",
        help="also fine-tune K fold models, each without a K-th of the queries, into OUT.folds/ "
        "(for 'tune --cross-fit OUT.folds'; K+1 fine-tunes in all)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_fine_tune)
