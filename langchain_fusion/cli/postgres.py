"""Command-line support for the PostgreSQL store: ``--store DSN|embedded`` and ``migrate``.

``--store DSN`` makes ``index`` write into (and ``search``/``ask``/``chat``/``eval``/``tune``
read from; ``eval``/``tune`` fill an empty collection from ``--beir``) a
[`PostgresHybridStore`][langchain_fusion.postgres.PostgresHybridStore] instead of an index
directory; ``--store embedded`` runs the embedded server on a persistent data directory
(``$LANGCHAIN_FUSION_PGDATA``, default ``~/.local/share/langchain_fusion/pgdata``) for the
duration of the command. ``langchain-fusion migrate INDEX_DIR DSN`` copies a saved local index
into PostgreSQL, reusing its stored vectors (nothing is embedded again).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = [
    "add_store_args",
    "add_commands",
    "open_store",
    "cmd_migrate",
    "default_data_dir",
    "store_for_eval",
]

_stack = contextlib.ExitStack()
atexit.register(_stack.close)


def default_data_dir() -> Path:
    """Return the data directory of ``--store embedded``.

    Example:
        >>> default_data_dir().name
        'pgdata'

    """
    env = os.environ.get("LANGCHAIN_FUSION_PGDATA")
    if env:
        return Path(env).expanduser()
    return Path("~/.local/share/langchain_fusion/pgdata").expanduser()


def add_store_args(p: argparse.ArgumentParser) -> None:
    """Add ``--store`` and ``--collection`` to a subcommand.

    Example:
        >>> p = argparse.ArgumentParser()
        >>> add_store_args(p)
        >>> p.parse_args(["--store", "embedded"]).collection
        'langchain_fusion'

    """
    p.add_argument(
        "--store",
        metavar="DSN|embedded",
        help="use a PostgreSQL store (a DSN, or 'embedded' for the bundled server) instead of "
        "an index directory",
    )
    p.add_argument(
        "--collection",
        default="langchain_fusion",
        help="collection in the PostgreSQL store (default langchain_fusion)",
    )


def _dsn(store: str) -> str:
    if store != "embedded":
        return store
    from langchain_fusion.postgres import embedded_server

    data = default_data_dir()
    data.parent.mkdir(parents=True, exist_ok=True)
    return str(_stack.enter_context(embedded_server(data)))


def open_store(args: argparse.Namespace, embeddings: Any = None) -> Any:
    """Open the store named by ``--store``/``--collection`` (starting the embedded server).

    Example:
        >>> open_store.__name__
        'open_store'

    """
    from langchain_fusion.postgres import PostgresHybridStore

    with _one_line():
        store = PostgresHybridStore(_dsn(args.store), embeddings, collection=args.collection)
    _stack.callback(store.close)
    return store


@contextlib.contextmanager
def _one_line() -> Any:
    """Turn the store's and the server's errors into the CLI's one-line errors."""
    from langchain_fusion.cli._common import CLIError
    from langchain_fusion.postgres import EmbeddedServerError, PostgresStoreError

    try:
        yield
    except (PostgresStoreError, EmbeddedServerError) as exc:
        raise CLIError(str(exc)) from None


def store_for_eval(args: argparse.Namespace, embeddings: Any, show: bool) -> tuple[Any, str | None]:
    """``eval``/``tune --store``: the collection, loaded from ``--beir`` when it is empty.

    Returns the store and its label when it already held documents (None when loaded now).

    Example:
        >>> store_for_eval.__name__
        'store_for_eval'

    """
    from langchain_fusion.cli._common import CLIError

    store = open_store(args, embeddings)
    label = f"collection {store.collection!r} of --store"
    with _one_line():
        size = len(store)
    if size:
        print(f"using the {size} documents in {label}", file=sys.stderr)
        return store, label
    if not getattr(args, "beir", None):
        raise CLIError(
            f"{label} is empty: add --beir PATH to load a BEIR corpus into it, or fill it "
            "first with: langchain-fusion index FILES --store ..."
        )
    from langchain_fusion.evaluation.beir import load_corpus

    corpus = load_corpus(args.beir)
    if not corpus:
        raise CLIError(f"the corpus in {args.beir} is empty")
    t0 = time.perf_counter()
    with _one_line():
        store.add_documents(corpus)
    print(
        f"loaded {len(corpus)} documents into {label} in {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    return store, None


def index_into_store(args: argparse.Namespace, chunks: list[Any], embeddings: Any) -> int:
    """``index FILES --store ...``: upsert the chunks (unchanged ones are not embedded again).

    Example:
        >>> index_into_store.__name__
        'index_into_store'

    """
    store = open_store(args, embeddings)
    stored = {d.id: d for d in store.get_by_ids([d.id for d in chunks if d.id is not None])}
    changed = [
        d
        for d in chunks
        if not (
            d.id in stored
            and stored[d.id].page_content == d.page_content
            and stored[d.id].metadata == d.metadata
        )
    ]
    t0 = time.perf_counter()
    if changed:
        with _one_line():
            store.add_documents(changed)
    print(
        f"indexed {len(changed)} new or changed chunks ({len(chunks) - len(changed)} unchanged) "
        f"into collection {store.collection!r} ({len(store)} chunks) in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Copy a saved local index into PostgreSQL, reusing its vectors (no re-embedding)."""
    from langchain_fusion.cli._common import CLIError
    from langchain_fusion.index import HybridIndex
    from langchain_fusion.postgres import PostgresHybridStore

    path = Path(args.index_dir)
    if not path.is_dir():
        raise CLIError(f"index not found: {path} (save one with HybridIndex.save or 'index')")
    index = HybridIndex.load(path)
    params = index.bm25_params
    if params.get("method", "lucene") != "lucene":
        raise CLIError(
            f"the index uses BM25 variant {params['method']!r}; PostgreSQL computes 'lucene' only"
        )
    with _one_line():
        store = PostgresHybridStore(
            _dsn(args.dsn),
            index.embeddings,
            collection=args.collection,
            tokenizer=index.tokenizer,
            k1=params["k1"],
            b=params["b"],
        )
    _stack.callback(store.close)
    ids = list(index.ids)
    t0 = time.perf_counter()
    for start in range(0, len(ids), args.batch_size):
        batch = ids[start : start + args.batch_size]
        docs = index.documents(batch)
        with _one_line():
            store.add_embeddings(
                [d.page_content for d in docs],
                index.get_vectors(batch),
                metadatas=[dict(d.metadata) for d in docs],
                ids=batch,
            )
        if not args.quiet:
            print(f"  {start + len(batch)}/{len(ids)}", file=sys.stderr)
    print(
        f"migrated {len(ids)} chunks from {path} into collection {store.collection!r} "
        f"({len(store)} chunks) in {time.perf_counter() - t0:.1f} s, vectors reused"
    )
    return 0


def add_commands(sub: Any) -> None:
    """Register ``migrate`` on the CLI's subparsers.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_commands(parser.add_subparsers())
        >>> parser.parse_args(["migrate", "idx", "embedded"]).dsn
        'embedded'

    """
    p = sub.add_parser(
        "migrate",
        help="copy a saved index into PostgreSQL (vectors reused)",
        description=cmd_migrate.__doc__,
    )
    p.add_argument("index_dir", help="index directory made by 'langchain-fusion index'")
    p.add_argument("dsn", help="PostgreSQL DSN, or 'embedded' for the bundled server")
    p.add_argument("--collection", default="langchain_fusion", help="target collection")
    p.add_argument("--batch-size", type=int, default=2000, help="chunks per transaction")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_migrate)
