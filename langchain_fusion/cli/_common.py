"""Helpers shared by the command groups: errors, argparse types, the model and the inputs."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from langchain_core.embeddings import Embeddings

__all__ = [
    "add_model_arg",
    "check_judged_docs_in",
    "check_sources",
    "cli_error",
    "CLIError",
    "fail",
    "folds_dir_of",
    "index_for",
    "int_at_least",
    "model_embeddings",
    "positive_float",
    "read_labels",
    "saved_index",
    "unit_interval",
]


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 1."""

    __module__ = "langchain_fusion.cli"  # its public home


def fail(message: str) -> NoReturn:
    raise CLIError(message)


def int_at_least(low: int) -> Callable[[str], int]:
    """Return an argparse ``type`` for integers >= ``low`` (bad values exit 2, one line)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
        return value

    return parse


def unit_interval(text: str) -> float:
    """Parse a number in [0, 1] (``--alpha``, ``--min``) for argparse."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text}")
    return value


def saved_index(path: Path) -> bool:
    """Tell whether ``path`` holds something to load (a missing or empty directory is new)."""
    if not path.exists():
        return False
    return not path.is_dir() or any(path.iterdir())


def model_embeddings(args: argparse.Namespace) -> Any:
    """Return the embeddings of ``--model DIR`` (a local sentence-transformers model), or None."""
    path = getattr(args, "model", None)
    if path is None:
        return None
    directory = Path(path).expanduser()
    if not (directory / "config.json").is_file():
        fail(
            f"--model {directory} is not a sentence-transformers model directory (no "
            "config.json); give the directory that fine_tune_embeddings wrote"
        )
    from langchain_fusion.dense import LocalEmbeddings

    return LocalEmbeddings(model_path=directory)


def add_model_arg(p: argparse.ArgumentParser) -> None:
    """Add ``--model DIR``: the embedding model, when it is not the bundled one."""
    p.add_argument(
        "--model",
        metavar="DIR",
        help="local sentence-transformers model directory, e.g. one written by "
        "fine_tune_embeddings (default: the bundled all-MiniLM-L6-v2); an index needs the "
        "model it was built with",
    )


def cli_error(message: str) -> Exception:
    return CLIError(message)


def positive_float(text: str) -> float:
    """Parse a finite number > 0 for argparse."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not 0.0 < value < float("inf"):  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def check_sources(args: argparse.Namespace) -> None:
    """Fail fast, naming what is missing: documents (``--beir``/``--index``) or labels."""
    beir = getattr(args, "beir", None)
    index = getattr(args, "index", None)
    queries = getattr(args, "queries", None)
    qrels = getattr(args, "qrels", None)
    if queries and not qrels:
        raise cli_error("--queries needs --qrels (a qrels .tsv file: query-id, corpus-id, score)")
    if qrels and not queries:
        raise cli_error("--qrels needs --queries (the queries.jsonl file whose queries it judges)")
    if beir:
        return
    if getattr(args, "store", None):
        index = index or "--store"  # the store holds the documents: only labels are needed
    if not index and not queries:
        raise cli_error(
            "give --beir PATH (a BEIR folder: corpus.jsonl, queries.jsonl, qrels/), "
            "or --index DIR with your own labels --queries FILE --qrels FILE"
        )
    if not queries:
        raise cli_error(
            f"--index {index} gives the documents but no labels: add --queries FILE and "
            "--qrels FILE (your judged queries), or --beir PATH (a BEIR folder's queries and qrels)"
        )
    if not index:
        raise cli_error(
            "--queries/--qrels give the labels but no documents: add --index DIR (an index "
            "saved by langchain-fusion) or --beir PATH (a BEIR folder whose corpus is indexed)"
        )
    if getattr(args, "store", None):
        return
    index_dir = Path(index).expanduser()
    if not saved_index(index_dir):
        state = "the directory is empty" if index_dir.is_dir() else "no such directory"
        raise cli_error(
            f"index not found: {index_dir} ({state}); give --beir PATH to build it from a BEIR "
            "corpus, or check the path"
        )


def index_for(
    args: argparse.Namespace, embeddings: Embeddings | None, show: bool
) -> tuple[Any, Path | None]:
    """Open ``--index DIR`` when it holds an index, else index the ``--beir`` corpus (saved there).

    Returns the index and the directory it was loaded from (None when it was built now).
    """
    from langchain_fusion.index import HybridIndex

    if embeddings is None:
        embeddings = model_embeddings(args)
    index_dir = Path(args.index).expanduser() if getattr(args, "index", None) else None
    if index_dir is not None and saved_index(index_dir):
        print(f"using the index in {index_dir}", file=sys.stderr)
        index = HybridIndex.load(index_dir, embeddings)
        _check_bm25(args, index, index_dir)
        return index, index_dir
    if not args.beir:
        if index_dir is not None:
            raise cli_error(
                f"index not found: {index_dir}; give --beir PATH to build it from a BEIR corpus"
            )
        raise cli_error("give --beir PATH (a BEIR folder with corpus.jsonl) or --index DIR")
    from langchain_fusion.evaluation.beir import load_corpus

    corpus = load_corpus(args.beir)
    if not corpus:
        raise cli_error(f"the corpus in {args.beir} is empty")
    params: dict[str, Any] = {}
    if getattr(args, "bm25_k1", None) is not None:
        params["k1"] = args.bm25_k1
    if getattr(args, "bm25_b", None) is not None:
        params["b"] = args.bm25_b
    start = time.perf_counter()
    index = HybridIndex(embeddings, **params)
    index.add_documents(corpus, show_progress=show)
    print(
        f"indexed {len(corpus)} documents in {time.perf_counter() - start:.1f} s", file=sys.stderr
    )
    if index_dir is not None:
        index.save(index_dir)
        print(f"saved the index to {index_dir} (reuse it with --index)", file=sys.stderr)
    return index, None


def _check_bm25(args: argparse.Namespace, index: Any, index_dir: Path) -> None:
    """``--bm25-k1``/``--bm25-b`` only apply when building: refuse values the index lacks."""
    bm25 = getattr(index, "_bm25", None)
    given, built = [], []
    for name in ("k1", "b"):
        value = getattr(args, f"bm25_{name}", None)
        if value is None:
            continue
        stored = getattr(bm25, name, None)
        if stored is None or abs(float(stored) - float(value)) > 1e-12:
            given.append(f"--bm25-{name} {value:g}")
            if stored is not None:
                built.append(f"{name}={float(stored):g}")
    if given:
        was = f" (built with {', '.join(built)})" if built else ""
        one = len(given) == 1
        raise cli_error(
            f"{' and '.join(given)} only appl{'ies' if one else 'y'} when building an index, and "
            f"{index_dir} already exists{was}; use a new --index DIR (or delete {index_dir}) to "
            f"rebuild it with {'this value' if one else 'these values'}, or drop "
            f"{'the option' if one else 'the options'}"
        )


def read_labels(
    args: argparse.Namespace, split: str | None
) -> tuple[dict[str, str], dict[str, dict[str, int]], str]:
    """Load ``(queries, qrels, description)`` from ``--queries/--qrels`` or a BEIR split."""
    from langchain_fusion.evaluation.beir import load_qrels, load_queries

    if split is None and getattr(args, "queries", None):
        if not args.qrels:
            raise cli_error(
                "--queries needs --qrels (a qrels .tsv file: query-id, corpus-id, score)"
            )
        for kind, value in (("queries", args.queries), ("qrels", args.qrels)):
            if not Path(value).expanduser().exists():
                raise cli_error(f"{kind} file not found: {value} (check the --{kind} path)")
        qrels = load_qrels(args.qrels)
        all_queries = load_queries(args.queries)
        name = f"{Path(args.queries).name} + {Path(args.qrels).name}"
    else:
        if not args.beir:
            raise cli_error("give --beir PATH for the queries and qrels, or --queries and --qrels")
        qrels = load_qrels(args.beir, split or "test")
        all_queries = load_queries(args.beir)
        name = f"{Path(args.beir).name} {split}"
    queries = {q: all_queries[q] for q in qrels if q in all_queries}
    if not queries:
        raise cli_error(f"no judged query of {name} is in the queries file")
    return queries, qrels, name


def check_judged_docs_in(
    documents: Sequence[Any], qrels: Mapping[str, Mapping[str, int]], name: str, where: str
) -> None:
    """Fail, naming examples, when the labels judge documents that are not in ``documents``."""
    ids = {d.id for d in documents}
    missing = sorted({d for docs in qrels.values() for d, rel in docs.items() if rel > 0} - ids)
    if missing:
        raise cli_error(
            f"{len(missing)} documents judged relevant in {name} are not in {where} (e.g. "
            f"{', '.join(missing[:3])}): the labels judge another corpus or other document ids"
        )


def folds_dir_of(model_dir: Path) -> Path:
    """Where ``fine-tune --folds`` writes the fold models of ``model_dir``."""
    return model_dir.with_name(model_dir.name + ".folds")
