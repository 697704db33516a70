"""``index``, ``search``, ``ask`` and ``chat``: build an index, search it, answer from it."""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_fusion.cli._common import (
    add_model_arg,
    fail,
    int_at_least,
    model_embeddings,
    saved_index,
    unit_interval,
)
from langchain_fusion.fusion import METHOD_CHOICES, NORMALIZATION_NAMES, OPTION_NAMES

__all__ = ["add_commands", "cmd_ask", "cmd_chat", "cmd_index", "cmd_sample_pdf", "cmd_search"]


def _parse_filter(text: str | None) -> dict[str, Any] | None:
    """Parse and check ``--filter`` before anything slow runs."""
    if not text:
        return None
    from langchain_fusion.filters import compile_filter

    try:
        flt = json.loads(text)
    except RecursionError:  # the JSON parser's own nesting limit
        from langchain_fusion.filters import MAX_FILTER_DEPTH

        fail(f"--filter is nested too deep (the limit is {MAX_FILTER_DEPTH} levels); flatten it")
    if not isinstance(flt, dict):
        fail(
            '--filter must be a JSON object such as \'{"file_name": "a.pdf"}\', '
            f"got {type(flt).__name__} {text}"
        )
    try:
        compile_filter(flt)
    except (TypeError, ValueError) as exc:
        fail(f"--filter: {exc}")
    return flt


def _retriever_options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for name in OPTION_NAMES:  # the fusion options this command line sets
        value = getattr(args, name, None)
        if value is not None:
            opts[name] = value
    return opts


def _load_index(path: str, embeddings: Any = None) -> Any:
    from langchain_fusion.index import HybridIndex

    p = Path(path)
    if not p.exists():
        fail(f"index not found: {p} (create it with: langchain-fusion index FILES... --out {p})")
    return HybridIndex.load(p, embeddings)


def _sample_cache(embeddings: Any) -> Path | None:
    """Where the bundled sample's index is kept for ``embeddings``, or None (not cacheable).

    The key covers the sample's bytes, the package version (chunking), the model's content
    fingerprint and the engine (onnx fp32/int8 or torch), so any change builds a new index.
    """
    from langchain_fusion import __version__
    from langchain_fusion.dense import LocalEmbeddings
    from langchain_fusion.dense.onnx import OnnxModelError, default_cache_dir, model_fingerprint
    from langchain_fusion.ingest import sample_path

    if type(embeddings) is not LocalEmbeddings:
        return None
    import xxhash

    try:
        engine = f"{embeddings.active_backend}\0{embeddings.precision}"
        digest = xxhash.xxh3_128()
        digest.update(f"{__version__}\0{engine}\0".encode())
        digest.update(model_fingerprint(embeddings.resolved_model_path).encode())
        digest.update(sample_path().read_bytes())
    except (OSError, OnnxModelError):
        return None
    return default_cache_dir().parent / "sample-index" / str(digest.hexdigest())


def _sample_index(show_progress: bool, embeddings: Any = None) -> Any:
    """Index the bundled sample, or reopen the copy an earlier run saved in the cache.

    The first ``--sample`` run embeds the sample (a few seconds) and saves the index atomically
    under the cache root (``$LANGCHAIN_FUSION_ONNX_CACHE/..``); later runs load it, so a cold
    ``ask --sample`` costs what ``ask INDEX_DIR`` costs. A damaged or unwritable cache is
    bypassed: the sample is indexed in memory as before.
    """
    from langchain_fusion.dense import default_embeddings
    from langchain_fusion.index import HybridIndex
    from langchain_fusion.ingest import ingest, sample_path
    from langchain_fusion.persistence import CorruptIndexError

    emb = embeddings if embeddings is not None else default_embeddings()
    cached = _sample_cache(emb)
    if cached is not None and cached.is_dir():
        try:
            return HybridIndex.load(cached, emb)
        except (CorruptIndexError, OSError, ValueError):  # damaged: our own entry, rebuilt
            shutil.rmtree(cached, ignore_errors=True)
    result = ingest([sample_path()], show_progress=False)
    index = HybridIndex(emb)
    index.add_documents(result.chunks, show_progress=show_progress)
    if cached is not None:
        with contextlib.suppress(OSError, ValueError):  # read-only cache: the index still answers
            index.save(cached, overwrite=True)
    return index


def _open(args: argparse.Namespace) -> Any:
    if getattr(args, "store", None):  # PostgreSQL (langchain_fusion.cli.postgres)
        from langchain_fusion.cli.postgres import open_store

        return open_store(args, model_embeddings(args))
    if getattr(args, "sample", False):
        if args.index:
            fail(f"give an index directory or --sample, not both (got {args.index!r} and --sample)")
        return _sample_index(show_progress=False, embeddings=model_embeddings(args))
    if not args.index:
        fail("give an index directory, or --sample to use the bundled sample document")
    return _load_index(args.index, model_embeddings(args))


def _source_label(meta: dict[str, Any]) -> str:
    name = meta.get("file_name") or Path(str(meta.get("source", "?"))).name
    page = meta.get("page")
    section = meta.get("section")
    label = f"{name}, p. {page}" if page else str(name)
    return f"{label} / {section}" if section else label


def _labels(docs: Sequence[Any]) -> list[str]:
    """Source labels; files of the same name from different paths show their paths."""
    paths: dict[Any, set[Any]] = {}
    for doc in docs:
        paths.setdefault(doc.metadata.get("file_name"), set()).add(doc.metadata.get("source"))
    labels = []
    for doc in docs:
        meta = doc.metadata
        if len(paths[meta.get("file_name")]) > 1 and meta.get("source"):
            meta = {**meta, "file_name": str(meta["source"])}
        labels.append(_source_label(meta))
    return labels


def _print_sources(docs: Sequence[Any], out: Any = None) -> None:
    out = out or sys.stdout
    print("\nSources:", file=out)
    labels = _labels(docs)
    for i, doc in enumerate(docs, 1):
        info = doc.metadata.get("fusion") or {}
        parts = []
        for name, b in (info.get("retrievers") or {}).items():
            if b is None:
                parts.append(f"{name} -")
            elif b.get("raw") == 0 and not b.get("rank"):
                parts.append(f"{name} no keyword match")
            else:
                rank = f"#{b['rank']}" if b.get("rank") else "unranked"
                raw = "-" if b.get("raw") is None else f"{b['raw']:.3f}"
                parts.append(f"{name} {raw} ({rank})")
        score = f"score {info['score']:.3f}: " if "score" in info else ""
        text = " ".join(doc.page_content.split())
        print(f"  [{i}] {labels[i - 1]}  ({score}{', '.join(parts)})", file=out)
        print(f"      {text[:160]}{'…' if len(text) > 160 else ''}", file=out)


def cmd_index(args: argparse.Namespace) -> int:
    """Ingest files/folders into an index directory (re-running updates it in place)."""
    from langchain_fusion.index import HybridIndex
    from langchain_fusion.ingest import ingest

    if not args.out and not getattr(args, "store", None):
        fail("give --out DIR (an index directory) or --store DSN|embedded (PostgreSQL)")
    out = Path(args.out or ".")
    show = not args.quiet
    if not args.paths and not args.prune:
        fail("give files or folders to index (or --prune alone to drop deleted files' chunks)")
    if args.chunk_overlap >= args.chunk_size:
        fail(
            f"--chunk-overlap ({args.chunk_overlap}) must be smaller than --chunk-size "
            f"({args.chunk_size})"
        )
    chunks: list[Any] = []
    files = 0
    if args.paths:
        result = ingest(
            args.paths,
            chunk_size=args.chunk_size,
            chunk_overlap=args.chunk_overlap,
            length_unit="tokens" if args.tokens else "chars",
            show_progress=show,
        )
        print(result.summary(), file=sys.stderr)
        if not result.chunks:
            fail("nothing to index: " + result.summary())
        chunks, files = result.chunks, len(result.files)
    if getattr(args, "store", None):  # PostgreSQL (langchain_fusion.cli.postgres)
        from langchain_fusion.cli.postgres import index_into_store

        return index_into_store(args, chunks, model_embeddings(args))
    existing = saved_index(out)
    if not existing and not chunks:
        fail(f"index not found: {out} (nothing to prune)")
    embeddings = model_embeddings(args)
    index = HybridIndex.load(out, embeddings) if existing else HybridIndex(embeddings)
    new_ids = {d.id for d in chunks}
    sources = {d.metadata.get("source") for d in chunks}
    stale, pruned = [], []
    stored = {}  # the chunks being indexed again, as the index holds them
    others = []  # the chunks of files not indexed again now (a copy of one may be)
    for doc in index.documents(index.ids):
        source = doc.metadata.get("source")
        if doc.id is None:
            continue
        if source not in sources:
            others.append(doc)
        if doc.id in new_ids:
            stored[doc.id] = doc
        elif source in sources:  # a re-indexed file no longer has this chunk
            stale.append(doc.id)
        elif args.prune and _deleted_file(source):
            pruned.append(doc.id)
    _warn_copies(chunks, others, out)
    # Chunks whose id, text and metadata are already in the index are not embedded again.
    changed = [d for d in chunks if not _same_chunk(stored.get(d.id), d)]
    before = len(index)
    t0 = time.perf_counter()
    if changed:
        index.add_documents(changed, show_progress=show)
    if stale or pruned:
        index.delete(stale + pruned)
    reclaimed = index.compact() if index.n_deleted > 0.2 * max(len(index), 1) else 0
    index.save(out)
    removed = f"{len(stale)} stale removed"
    if args.prune:
        removed += f", {len(pruned)} of deleted files pruned"
    if reclaimed:
        removed += f", {reclaimed} slots reclaimed"
    print(
        f"indexed {len(changed)} new or changed chunks ({len(chunks) - len(changed)} unchanged) "
        f"from {files} file{'s' if files != 1 else ''} into {out} "
        f"({before} -> {len(index)} chunks, {removed}) in {time.perf_counter() - t0:.1f} s"
    )
    return 0


def _warn_copies(chunks: Sequence[Any], others: Sequence[Any], out: Path) -> None:
    """Warn about files indexed again under another path (chunk ids depend on the path)."""
    from langchain_fusion.ingest import find_copies

    for source, copy_of in find_copies(chunks, others):
        if _deleted_file(copy_of):
            fix = f"it moved: run 'langchain-fusion index --prune --out {out}' to drop the old copy"
        else:
            fix = (
                f"index one path only; to drop the other: HybridIndex.load({str(out)!r}) then "
                f".delete(filter={{'source': {copy_of!r}}}) and .save({str(out)!r})"
            )
        warnings.warn(
            f"{source} has the same content as {copy_of}, in the index too: its chunks are added "
            f"again (chunk ids depend on the path) and search will show both copies; {fix}",
            UserWarning,
            stacklevel=2,
        )


def _deleted_file(source: Any) -> bool:
    """Whether ``source`` names a file that is gone (only absolute paths, as ingestion writes)."""
    if not isinstance(source, str) or not source:
        return False
    path = Path(source)
    return path.is_absolute() and not path.exists()


def _same_chunk(stored: Any, chunk: Any) -> bool:
    return (
        stored is not None
        and stored.page_content == chunk.page_content
        and stored.metadata == chunk.metadata
    )


def cmd_search(args: argparse.Namespace) -> int:
    """Fused search with a score breakdown."""
    from langchain_fusion.formatting import format_breakdown
    from langchain_fusion.retriever import FusionRetriever

    flt = _parse_filter(args.filter)  # checked before the slow part
    index = _open(args)
    retriever = FusionRetriever.from_index(index, **_retriever_options(args))
    docs = retriever.invoke(args.query, filter=flt)
    if not docs:
        why = "the filter matched no documents" if flt else "the index is empty"
        print(f"no results ({why})", file=sys.stderr)
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
    labels = _labels(docs)
    for i, d in enumerate(docs, 1):
        text = " ".join(d.page_content.split())
        print(f"[{i}] {d.metadata['fusion']['score']:.3f}  {labels[i - 1]}")
        print(f"    {text[:200]}{'…' if len(text) > 200 else ''}")
    return 0


def cmd_sample_pdf(args: argparse.Namespace) -> int:
    """Write the bundled sample manual as a PDF, to follow the documentation's examples."""
    from langchain_fusion.ingest import write_sample_pdf

    try:
        path = write_sample_pdf(args.path)
    except FileExistsError as exc:
        fail(f"{exc}; from the shell: langchain-fusion sample-pdf OTHER.pdf")
    print(
        f"wrote {path}: the Lumen-7 sample manual, 7 pages; next: "
        f"langchain-fusion index {path} --out my-index"
    )
    return 0


def _chat_model(args: argparse.Namespace) -> Any:
    """Resolve ``--llm`` first, so a bad model name or missing key fails before any indexing."""
    from langchain_fusion.qa import resolve_llm

    return resolve_llm(args.llm)


def _chain(args: argparse.Namespace, index: Any, llm: Any) -> Any:
    from langchain_fusion.qa import build_qa_chain
    from langchain_fusion.retriever import FusionRetriever

    retriever = FusionRetriever.from_index(index, **_retriever_options(args))
    limit = getattr(args, "max_question_chars", None)
    if limit is None:
        return build_qa_chain(retriever, llm=llm)
    return build_qa_chain(retriever, llm=llm, max_question_chars=limit)


_OFFLINE_NOTICE = (
    "No LLM configured (set OPENAI_API_KEY or use --llm); answers are the most relevant "
    "sentences from the sources."
)


def _offline(chain: Any) -> bool:
    return getattr(chain, "llm", False) is None


def _answer(chain: Any, question: str, stream: bool) -> None:
    from langchain_fusion.qa import NO_LLM_NOTICE

    limit = getattr(chain, "max_question_chars", None)
    if isinstance(limit, int) and len(question) > limit:
        raise ValueError(
            f"question is {len(question)} characters long; the limit is {limit}: shorten it, "
            "or raise the limit with --max-question-chars N"
        )
    if _offline(chain):  # extractive: instant, and its notice went to stderr once
        result = chain.invoke(question)
        print(result.answer.removeprefix(NO_LLM_NOTICE).lstrip("\n"))
    elif stream and hasattr(chain, "stream_result"):
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


def _llm_failed(exc: Exception) -> str:
    return (
        f"{exc}; check the --llm model name and its API key, or drop --llm (and unset "
        "OPENAI_API_KEY) for offline answers from the sources"
    )


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer a question from the index, with numbered sources."""
    from langchain_fusion.qa import LLMError

    llm = _chat_model(args)
    index = _open(args)
    chain = _chain(args, index, llm)
    if _offline(chain):
        print(_OFFLINE_NOTICE + "\n", file=sys.stderr)
    try:
        _answer(chain, args.question, stream=not args.no_stream)
    except LLMError as exc:
        fail(_llm_failed(exc))
    return 0


def _line_editing() -> bool:
    """Give ``input()`` line editing and history (arrow keys) through ``readline`` if present.

    Example:
        >>> _line_editing() in (True, False)
        True

    """
    try:
        import readline  # noqa: F401  (importing it is what switches input() to it)
    except ImportError:  # e.g. Windows without pyreadline3: plain input() still works
        return False
    return True


def cmd_chat(args: argparse.Namespace) -> int:
    """Interactive questions; the index and model stay loaded between questions."""
    from langchain_fusion.qa import LLMError

    _line_editing()
    llm = _chat_model(args)
    index = _open(args)
    chain = _chain(args, index, llm)
    if _offline(chain):
        print(_OFFLINE_NOTICE, file=sys.stderr)
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
        except LLMError as exc:  # the session goes on: the next question may work
            print(f"error: {_llm_failed(exc)}", file=sys.stderr)
        print(f"({time.perf_counter() - t0:.2f} s)\n", file=sys.stderr)
    return 0


def _add_fusion_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--k", type=int_at_least(1), help="number of results (default 4)")
    p.add_argument(
        "--alpha", type=unit_interval, help="0 = keyword only, 1 = vector only (default 0.5)"
    )
    p.add_argument(
        "--method",
        choices=list(METHOD_CHOICES),
        help="fusion method (default convex with min-max)",
    )
    p.add_argument("--normalization", choices=list(NORMALIZATION_NAMES))
    p.add_argument(
        "--rrf-k", dest="rrf_k", type=int_at_least(1), help="RRF constant k (default 60)"
    )
    p.add_argument(
        "--fetch-k", dest="fetch_k", type=int_at_least(1), help="candidates per retriever"
    )
    p.add_argument(
        "--feedback-docs",
        dest="feedback_docs",
        type=int_at_least(0),
        metavar="N",
        help="expand the query with the top N fused results and search again (default 0 = off)",
    )


def _add_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("index", nargs="?", help="index directory made by 'langchain-fusion index'")
    p.add_argument(
        "--sample", action="store_true", help="use the bundled sample document (no index needed)"
    )
    add_model_arg(p)
    _add_store_args(p)


def _add_store_args(p: argparse.ArgumentParser) -> None:
    from langchain_fusion.cli.postgres import add_store_args

    add_store_args(p)


def add_commands(sub: Any) -> None:
    """Add the ``index``, ``search``, ``ask`` and ``chat`` subcommands to the parser.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser()
        >>> add_commands(parser.add_subparsers(dest="command"))
        >>> parser.parse_args(["search", "idx", "battery", "--k", "3"]).k
        3

    """
    p = sub.add_parser(
        "index",
        help="ingest PDFs, text and Markdown into an index directory",
        description=cmd_index.__doc__,
    )
    p.add_argument("paths", nargs="*", help="files or folders")
    p.add_argument("--out", help="index directory (created or updated)")
    p.add_argument(
        "--chunk-size", type=int_at_least(1), default=600, help="chunk size (default 600)"
    )
    p.add_argument(
        "--chunk-overlap", type=int_at_least(0), default=150, help="overlap (default 150)"
    )
    p.add_argument("--tokens", action="store_true", help="measure chunks in tokens (cl100k_base)")
    p.add_argument(
        "--prune",
        action="store_true",
        help="also remove the chunks of files that no longer exist (alone: only that)",
    )
    add_model_arg(p)
    _add_store_args(p)
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
        p.add_argument(
            "--max-question-chars",
            dest="max_question_chars",
            type=int_at_least(1),
            metavar="N",
            help="refuse longer questions (default 4000)",
        )
        p.set_defaults(func=func)

    p = sub.add_parser(
        "sample-pdf",
        help="write the sample manual as a PDF (manual.pdf) to try the examples on",
        description=cmd_sample_pdf.__doc__,
    )
    p.add_argument("path", nargs="?", default="manual.pdf", help="where (default manual.pdf)")
    p.set_defaults(func=cmd_sample_pdf)
