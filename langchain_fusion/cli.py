"""The ``langchain-fusion`` command line: index documents, search, ask, chat.

Run ``langchain-fusion --help`` or ``langchain-fusion COMMAND --help``. User mistakes end with a
one-line ``error: ...`` on stderr and exit code 1 (2 for bad usage), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["main"]

EPILOG = """examples:
  langchain-fusion ask --sample "What does error E-217 mean?"
  langchain-fusion index docs/ --out my-index
  langchain-fusion search my-index "read_csv encoding error" --k 5 --explain
  langchain-fusion ask my-index "How do I reset the battery?" --llm openai:gpt-4o-mini
  langchain-fusion chat my-index
"""


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


def _fail(message: str) -> NoReturn:
    raise CLIError(message)


# ------------------------------------------------------------------------------------ helpers


def _retriever_options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for name in ("k", "alpha", "method", "normalization", "fetch_k", "feedback_docs"):
        value = getattr(args, name, None)
        if value is not None:
            opts[name] = value
    return opts


def _load_index(path: str) -> Any:
    from langchain_fusion.index import HybridIndex

    p = Path(path)
    if not p.exists():
        _fail(f"index not found: {p} (create it with: langchain-fusion index FILES... --out {p})")
    return HybridIndex.load(p)


def _sample_index(show_progress: bool) -> Any:
    from langchain_fusion.index import HybridIndex
    from langchain_fusion.ingest import ingest, sample_path

    result = ingest([sample_path()], show_progress=False)
    index = HybridIndex()
    index.add_documents(result.chunks, show_progress=show_progress)
    return index


def _open(args: argparse.Namespace) -> Any:
    if getattr(args, "sample", False):
        return _sample_index(show_progress=False)
    if not args.index:
        _fail("give an index directory, or --sample to use the bundled sample document")
    return _load_index(args.index)


def _source_label(meta: dict[str, Any]) -> str:
    name = meta.get("file_name") or Path(str(meta.get("source", "?"))).name
    page = meta.get("page")
    section = meta.get("section")
    label = f"{name}, p. {page}" if page else str(name)
    return f"{label} / {section}" if section else label


def _print_sources(docs: Sequence[Any], out: Any = None) -> None:
    out = out or sys.stdout
    print("\nSources:", file=out)
    for i, doc in enumerate(docs, 1):
        info = doc.metadata.get("fusion") or {}
        parts = []
        for name, b in (info.get("retrievers") or {}).items():
            if b is None:
                parts.append(f"{name} -")
            else:
                rank = f"#{b['rank']}" if b.get("rank") else "unranked"
                raw = "-" if b.get("raw") is None else f"{b['raw']:.3f}"
                parts.append(f"{name} {raw} ({rank})")
        score = f"score {info['score']:.3f}: " if "score" in info else ""
        text = " ".join(doc.page_content.split())
        print(f"  [{i}] {_source_label(doc.metadata)}  ({score}{', '.join(parts)})", file=out)
        print(f"      {text[:160]}{'…' if len(text) > 160 else ''}", file=out)


# ------------------------------------------------------------------------------------ commands


def cmd_index(args: argparse.Namespace) -> int:
    """Ingest files/folders into an index directory (re-running updates it in place)."""
    from langchain_fusion.index import HybridIndex
    from langchain_fusion.ingest import ingest

    out = Path(args.out)
    show = not args.quiet
    result = ingest(
        args.paths,
        chunk_size=args.chunk_size,
        chunk_overlap=args.chunk_overlap,
        length_unit="tokens" if args.tokens else "chars",
        show_progress=show,
    )
    print(result.summary(), file=sys.stderr)
    if not result.chunks:
        _fail("nothing to index: " + result.summary())
    index = HybridIndex.load(out) if out.exists() else HybridIndex()
    new_ids = {d.id for d in result.chunks}
    sources = {d.metadata.get("source") for d in result.chunks}
    stale = [
        doc.id
        for doc in index.documents(index.ids)
        if doc.id is not None and doc.metadata.get("source") in sources and doc.id not in new_ids
    ]
    before = len(index)
    t0 = time.perf_counter()
    index.add_documents(result.chunks, show_progress=show)
    if stale:
        index.delete(stale)
    index.save(out)
    print(
        f"indexed {len(result.chunks)} chunks from {len(result.files)} files into {out} "
        f"({before} -> {len(index)} chunks, {len(stale)} stale removed) "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """Fused search with a score breakdown."""
    from langchain_fusion.retriever import FusionRetriever, format_breakdown

    index = _open(args)
    retriever = FusionRetriever.from_index(index, **_retriever_options(args))
    flt = json.loads(args.filter) if args.filter else None
    docs = retriever.invoke(args.query, filter=flt)
    if args.json:
        print(
            json.dumps(
                [{"id": d.id, "text": d.page_content, "metadata": d.metadata} for d in docs],
                indent=2,
                default=str,
            )
        )
        return 0
    if args.explain:
        print(format_breakdown(docs, retriever.names, width=70))
        return 0
    for i, d in enumerate(docs, 1):
        text = " ".join(d.page_content.split())
        print(f"[{i}] {d.metadata['fusion']['score']:.3f}  {_source_label(d.metadata)}")
        print(f"    {text[:200]}{'…' if len(text) > 200 else ''}")
    return 0


def _chain(args: argparse.Namespace, index: Any) -> Any:
    from langchain_fusion.qa import build_qa_chain
    from langchain_fusion.retriever import FusionRetriever

    retriever = FusionRetriever.from_index(index, **_retriever_options(args))
    return build_qa_chain(retriever, llm=args.llm)


def _answer(chain: Any, question: str, stream: bool) -> None:
    if stream and hasattr(chain, "stream_result"):
        result = None
        for event in chain.stream_result(question):
            if getattr(event, "token", None):
                print(event.token, end="", flush=True)
            if getattr(event, "result", None) is not None:
                result = event.result
        print()
    else:
        result = chain.invoke(question)
        print(result.answer)
    if result is None:
        return
    report = getattr(result, "verification", None)
    if report is not None and not report.ok:
        removed = ", ".join(f"[{n}]" for n in report.removed_citations)
        if removed:
            print(f"(verifier removed citations to missing sources: {removed})")
        if report.unverified_quotes:
            print(
                f"(verifier removed {len(report.unverified_quotes)} quote(s) not found in sources)"
            )
    _print_sources(result.sources)


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer a question from the index, with numbered sources."""
    index = _open(args)
    chain = _chain(args, index)
    _answer(chain, args.question, stream=not args.no_stream)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """Interactive questions; the index and model stay loaded between questions."""
    index = _open(args)
    chain = _chain(args, index)
    print("Ask a question (empty line or Ctrl-D to quit).", file=sys.stderr)
    while True:
        try:
            question = input("? ").strip()
        except EOFError:
            break
        if not question:
            break
        t0 = time.perf_counter()
        try:
            _answer(chain, question, stream=not args.no_stream)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
        print(f"({time.perf_counter() - t0:.2f} s)\n", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------ parser


def _add_fusion_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--k", type=int, help="number of results (default 4)")
    p.add_argument("--alpha", type=float, help="0 = keyword only, 1 = vector only (default 0.5)")
    p.add_argument(
        "--method",
        choices=["convex", "rrf", "minmax", "zscore", "dbsf"],
        help="fusion method (default convex with min-max)",
    )
    p.add_argument("--normalization", choices=["minmax", "zscore", "dbsf", "none"])
    p.add_argument("--fetch-k", dest="fetch_k", type=int, help="candidates per retriever")
    p.add_argument(
        "--feedback-docs",
        dest="feedback_docs",
        type=int,
        metavar="N",
        help="expand the query with the top N fused results and search again (default 0 = off)",
    )


def _add_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("index", nargs="?", help="index directory made by 'langchain-fusion index'")
    p.add_argument(
        "--sample", action="store_true", help="use the bundled sample document (no index needed)"
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser (exposed for docs and tests).

    Example:
        >>> build_parser().prog
        'langchain-fusion'

    """
    parser = argparse.ArgumentParser(
        prog="langchain-fusion",
        description="Hybrid (dense + BM25) search and question answering over your documents.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from langchain_fusion import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "index",
        help="ingest PDFs, text and Markdown into an index directory",
        description=cmd_index.__doc__,
    )
    p.add_argument("paths", nargs="+", help="files or folders")
    p.add_argument("--out", required=True, help="index directory (created or updated)")
    p.add_argument("--chunk-size", type=int, default=600, help="chunk size (default 600)")
    p.add_argument("--chunk-overlap", type=int, default=150, help="overlap (default 150)")
    p.add_argument("--tokens", action="store_true", help="measure chunks in tokens (cl100k_base)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser(
        "search", help="fused search with a score breakdown", description=cmd_search.__doc__
    )
    _add_source(p)
    p.add_argument("query")
    _add_fusion_args(p)
    p.add_argument("--explain", action="store_true", help="show per-retriever scores and ranks")
    p.add_argument("--filter", help='metadata filter as JSON, e.g. \'{"file_name": "a.pdf"}\'')
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_search)

    for name, func, helptext in (
        ("ask", cmd_ask, "answer one question with numbered sources"),
        ("chat", cmd_chat, "ask several questions; the index stays loaded"),
    ):
        p = sub.add_parser(name, help=helptext, description=func.__doc__)
        _add_source(p)
        if name == "ask":
            p.add_argument("question")
        _add_fusion_args(p)
        p.add_argument(
            "--llm",
            help='chat model: "openai:gpt-4o-mini", "ollama:llama3.2"... '
            "(default: gpt-4o-mini when OPENAI_API_KEY is set, else offline extractive)",
        )
        p.add_argument("--no-stream", action="store_true", help="print the answer at the end")
        p.set_defaults(func=func)

    try:
        from langchain_fusion.evaluation.cli import add_commands
    except ImportError:
        pass
    else:
        add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``langchain-fusion`` command.

    Example:
        >>> main(["--version"])  # doctest: +SKIP

    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except CLIError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except json.JSONDecodeError as exc:
        print(f"error: --filter is not valid JSON: {exc}", file=sys.stderr)
    except (ValueError, ImportError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
