"""`PostgresHybridStore`: documents, vectors and BM25 statistics in PostgreSQL + pgvector.

Layout of a collection ``c`` (all names are checked identifiers):

* ``langchain_fusion_collections``: one row per collection: schema version, configuration
  (embedding identity and dimension, tokenizer, BM25 parameters) and the corpus statistics
  ``n_docs`` and ``total_len``. Writers lock this row, so writes to one collection are
  serialised and the statistics stay exact under concurrency.
* ``lf_c_docs``: ``rowid`` (insertion order), ``id`` (unique), ``content``, ``metadata`` (jsonb),
  ``embedding`` (``vector(dim)``, HNSW index with cosine distance), and the document's BM25 terms
  (``terms`` int4[] of term ids, ``tfs`` their counts, ``len`` its length in tokens), tokenized
  by the package's own [`Tokenizer`][langchain_fusion.lexical.Tokenizer].
* ``lf_c_terms``: ``term`` -> ``id`` and its document frequency ``df``.
* ``lf_c_postings``: the inverted index ``(term, doc, tf, dl)``, primary key ``(term, doc)``
  (a btree: a query term's postings are one index range).

BM25 (Lucene variant, the package's default) is computed by one SQL statement from these
tables, with the same formula as [`BM25Index`][langchain_fusion.lexical.BM25Index].
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import threading
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from numpy.typing import NDArray

from langchain_fusion.embedding_checks import describe, embedding_identity, same_model
from langchain_fusion.lexical.tokenizer import Tokenizer
from langchain_fusion.postgres._filters import filter_sql

if TYPE_CHECKING:
    from langchain_fusion.sources import Candidates, Source

__all__ = ["PostgresHybridStore", "PostgresStoreError", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
"""Version of the table layout this code writes and reads."""

REGISTRY = "langchain_fusion_collections"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
_METHODS = ("lucene",)


class PostgresStoreError(RuntimeError):
    """A PostgreSQL store problem with a one-line explanation (server, schema, configuration)."""


def _check_collection(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"collection must be 1-40 ASCII letters, digits or underscores, starting with a "
            f"letter or underscore (e.g. 'my_docs'), got {name!r}"
        )
    return name


def _no_nul(value: str, what: str) -> str:
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL character (\\x00), which PostgreSQL cannot store")
    return value


def _metadata_json(metadata: Any, where: str) -> str:
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata {where} must be a dict, got {type(metadata).__name__}")
    try:
        text = json.dumps(metadata, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata {where} cannot be stored as JSON: {exc}") from None
    if "\\u0000" in text:
        raise ValueError(f"metadata {where} contains a NUL character, which PostgreSQL rejects")
    return text


def _json_default(value: Any) -> Any:
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class Vector:
    """A float32 vector sent to PostgreSQL in pgvector's binary format.

    Example:
        >>> Vector([1.0, 2.0]).values.tolist()
        [1.0, 2.0]

    """

    __slots__ = ("values",)

    def __init__(self, values: Any) -> None:
        self.values = np.ascontiguousarray(values, dtype=">f4")


def _register_vector(conn: Any, info: Any) -> None:
    """Register pgvector's type and a binary dumper for `Vector` on one connection.

    pgvector's binary format: uint16 dimension, uint16 unused, then big-endian float32 values.
    """
    import struct

    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    class VectorDumper(Dumper):
        format = Format.BINARY
        oid = info.oid

        def dump(self, obj: Any) -> bytes:
            values = obj.values
            return struct.pack(">HH", values.shape[0], 0) + bytes(values.tobytes())

    info.register(conn)
    conn.adapters.register_dumper(Vector, VectorDumper)


def _as_is(text: Any) -> str:
    return str(text)


def _identity(embedding: Embeddings | None, dim: int | None) -> dict[str, Any] | None:
    if embedding is None:
        return None
    return embedding_identity(embedding, dim)


def _friendly(exc: BaseException, dsn_hint: str = "") -> PostgresStoreError:
    """One-line error for a psycopg exception."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return PostgresStoreError(f"PostgreSQL error: {text}{dsn_hint}")


@dataclass
class _Collection:
    """What the registry row says about a collection."""

    uid: str
    version: int
    config: dict[str, Any]
    n_docs: int
    total_len: int


class _Names:
    """Checked identifiers of one collection's tables."""

    def __init__(self, collection: str) -> None:
        from psycopg import sql

        self.docs = sql.Identifier(f"lf_{collection}_docs")
        self.terms = sql.Identifier(f"lf_{collection}_terms")
        self.postings = sql.Identifier(f"lf_{collection}_postings")
        self.hnsw = sql.Identifier(f"lf_{collection}_hnsw")
        self.registry = sql.Identifier(REGISTRY)


# ------------------------------------------------------------------------------ SQL

_CREATE_REGISTRY = """
CREATE TABLE IF NOT EXISTS {registry} (
    name text PRIMARY KEY,
    uid text NOT NULL,
    schema_version integer NOT NULL,
    config jsonb NOT NULL,
    n_docs bigint NOT NULL DEFAULT 0,
    total_len bigint NOT NULL DEFAULT 0
)"""

_CREATE_TABLES = [
    """CREATE TABLE IF NOT EXISTS {docs} (
        rowid bigserial PRIMARY KEY,
        id text NOT NULL UNIQUE,
        content text NOT NULL,
        metadata jsonb NOT NULL,
        embedding vector({dim}) NOT NULL,
        terms int4[] NOT NULL,
        tfs int4[] NOT NULL,
        len int4 NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS {terms} (
        id serial PRIMARY KEY,
        term text NOT NULL UNIQUE,
        df bigint NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS {postings} (
        term int4 NOT NULL,
        doc int8 NOT NULL,
        tf int4 NOT NULL,
        dl int4 NOT NULL,
        PRIMARY KEY (term, doc) INCLUDE (tf, dl)
    )""",
    """CREATE INDEX IF NOT EXISTS {hnsw} ON {docs}
        USING hnsw (embedding vector_cosine_ops) WITH (m = {m}, ef_construction = {efc})""",
    # Vectors inline and uncompressed (TOAST would compress them and move them out of line,
    # making every distance computation detoast: 10x slower exact search and loading).
    "ALTER TABLE {docs} ALTER COLUMN embedding SET STORAGE {storage}",
]

_STAGING = """CREATE TEMP TABLE IF NOT EXISTS lf_staging (
    ord int4, id text, content text, metadata jsonb, embedding vector,
    terms int4[], tfs int4[], len int4
) ON COMMIT DELETE ROWS"""

_DELETE = """
WITH gone AS (
    DELETE FROM {docs} WHERE id = ANY(%(ids)s) RETURNING rowid, terms, len
), p AS (
    DELETE FROM {postings} p USING (
        SELECT u.t, g.rowid FROM gone g, unnest(g.terms) AS u(t)
    ) x WHERE p.term = x.t AND p.doc = x.rowid
), d AS (
    UPDATE {terms} t SET df = t.df - c.n FROM (
        SELECT u.t, count(*) AS n FROM gone g, unnest(g.terms) AS u(t) GROUP BY u.t
    ) c WHERE t.id = c.t
), s AS (
    UPDATE {registry} SET
        n_docs = n_docs - (SELECT count(*) FROM gone),
        total_len = total_len - (SELECT coalesce(sum(len), 0) FROM gone)
    WHERE name = %(collection)s
)
SELECT count(*) FROM gone"""

_INSERT = """
WITH ins AS (
    INSERT INTO {docs} (id, content, metadata, embedding, terms, tfs, len)
    SELECT id, content, metadata, embedding, terms, tfs, len FROM lf_staging ORDER BY ord
    RETURNING rowid, terms, tfs, len
), p AS (
    INSERT INTO {postings} (term, doc, tf, dl)
    SELECT u.t, ins.rowid, u.f, ins.len FROM ins, unnest(ins.terms, ins.tfs) AS u(t, f)
), d AS (
    UPDATE {terms} t SET df = t.df + c.n FROM (
        SELECT u.t, count(*) AS n FROM lf_staging s, unnest(s.terms) AS u(t) GROUP BY u.t
    ) c WHERE t.id = c.t
), s AS (
    UPDATE {registry} SET
        n_docs = n_docs + (SELECT count(*) FROM lf_staging),
        total_len = total_len + (SELECT coalesce(sum(len), 0) FROM lf_staging)
    WHERE name = %(collection)s
)
SELECT count(*) FROM ins"""

# The query terms with their weights qtf * idf (Lucene idf), from the stored statistics.
_QUERY_TERMS = """
st AS (
    SELECT n_docs::float8 AS n, greatest(total_len::float8 / greatest(n_docs, 1), 1e-9) AS avgdl
    FROM {registry} WHERE name = %(collection)s
), qw AS (
    SELECT t.id, q.qtf * ln(1 + (st.n - t.df + 0.5) / (t.df + 0.5)) AS w
    FROM unnest(%(qterms)s::text[], %(qtf)s::float8[]) AS q(term, qtf)
    JOIN {terms} t ON t.term = q.term, st
    WHERE t.df > 0
)"""

_TFC = "p.tf / (p.tf + %(k1)s::float8 * (1 - %(b)s::float8 + %(b)s::float8 * p.dl / st.avgdl))"


def _joint_sql(filtered: bool, exact: bool, k_dense: bool, k_bm25: bool) -> str:
    """One statement: dense top-k, BM25 top-k, both sides' scores of every candidate, docs."""
    order = (
        "(d.embedding <=> %(qvec)s::vector) + 0" if exact else "d.embedding <=> %(qvec)s::vector"
    )
    where = "WHERE {filter}" if filtered else ""
    dense = (
        f"""dn AS MATERIALIZED (
        SELECT d.rowid, row_number() OVER () AS rk FROM (
            SELECT d.rowid FROM {{docs}} d {where} ORDER BY {order} LIMIT %(k)s
        ) d
    )"""
        if k_dense
        else "dn AS (SELECT NULL::int8 AS rowid, NULL::int8 AS rk WHERE false)"
    )
    if not k_bm25:
        bm = "bm AS (SELECT NULL::int8 AS doc, NULL::int8 AS rk WHERE false)"
    elif filtered:
        bm = f"""bm AS MATERIALIZED (
        SELECT doc, row_number() OVER (ORDER BY score DESC, doc) AS rk FROM (
            SELECT p.doc, sum(qw.w * {_TFC}) AS score
            FROM qw JOIN {{postings}} p ON p.term = qw.id JOIN {{docs}} d ON d.rowid = p.doc, st
            {where}
            GROUP BY p.doc ORDER BY score DESC, p.doc LIMIT %(kk)s
        ) x WHERE score > 0
    )"""
    else:
        bm = f"""bm AS MATERIALIZED (
        SELECT doc, row_number() OVER (ORDER BY score DESC, doc) AS rk FROM (
            SELECT p.doc, sum(qw.w * {_TFC}) AS score
            FROM qw JOIN {{postings}} p ON p.term = qw.id, st
            GROUP BY p.doc ORDER BY score DESC, p.doc LIMIT %(kk)s
        ) x WHERE score > 0
    )"""
    return f"""
WITH {_QUERY_TERMS}, {dense}, {bm},
cand AS (
    SELECT rowid, max(dr) AS dr, max(br) AS br FROM (
        SELECT rowid, rk AS dr, NULL::int8 AS br FROM dn
        UNION ALL SELECT doc, NULL, rk FROM bm
    ) u GROUP BY rowid
), kw AS (
    SELECT p.doc, sum(qw.w * {_TFC}) AS score
    FROM cand c CROSS JOIN qw JOIN {{postings}} p ON p.term = qw.id AND p.doc = c.rowid, st
    GROUP BY p.doc
)
SELECT d.id, c.dr, c.br, 1 - (d.embedding <=> %(qvec)s::vector) AS dense,
       coalesce(kw.score, 0) AS bm25, d.content, d.metadata,
       (SELECT n_docs FROM {{registry}} WHERE name = %(collection)s) AS n_docs
FROM cand c JOIN {{docs}} d ON d.rowid = c.rowid LEFT JOIN kw ON kw.doc = c.rowid"""


_SCORE_SQL = """
WITH {query_terms}, ids AS (
    SELECT d.rowid, d.id, d.embedding FROM {{docs}} d WHERE d.id = ANY(%(ids)s)
), kw AS (
    SELECT p.doc, sum(qw.w * {tfc}) AS score
    FROM ids c CROSS JOIN qw JOIN {{postings}} p ON p.term = qw.id AND p.doc = c.rowid, st
    GROUP BY p.doc
)
SELECT ids.id, {dense}, coalesce(kw.score, 0)
FROM ids LEFT JOIN kw ON kw.doc = ids.rowid"""


@dataclass
class JointResult:
    """Both sides' answers to one query, with complete scores for every candidate.

    Attributes:
        dense_ids: Dense top-k ids, best first.
        bm25_ids: BM25 top-k ids, best first.
        dense: id -> cosine similarity, for every candidate of either side.
        bm25: id -> BM25 score, for every candidate of either side.
        docs: id -> Document, for every candidate.
        query_vector: The query embedding.

    """

    dense_ids: list[str]
    bm25_ids: list[str]
    dense: dict[str, float]
    bm25: dict[str, float]
    docs: dict[str, Document]
    query_vector: NDArray[np.float32] | None


class PostgresHybridStore(VectorStore):
    """A LangChain vector store in PostgreSQL + pgvector that also does BM25 in SQL.

    Args:
        connection: A DSN (``postgresql://user@host:5432/db``), a ``psycopg_pool.ConnectionPool``
            or a ``psycopg_pool.AsyncConnectionPool`` (async methods only).
        embedding: The embedding model (``None``: the local all-MiniLM-L6-v2, extra ``local``).
        collection: Collection name: 1-40 ASCII letters, digits or underscores.
        tokenizer: BM25 tokenizer (default ``Tokenizer()``); for an existing collection,
            ``None`` uses the stored one and another one is refused.
        k1: BM25 saturation (default 1.5; stored with the collection).
        b: BM25 length normalisation (default 0.75; stored with the collection).
        bm25_method: Only ``"lucene"`` is computed in SQL.
        dense_search: ``"auto"`` (exact below ``hnsw_threshold`` documents, HNSW above),
            ``"hnsw"`` or ``"exact"``.
        hnsw_threshold: See ``dense_search``.
        hnsw_m: HNSW graph degree (used when the collection is created).
        ef_construction: HNSW build beam width (used when the collection is created).
        ef_search: HNSW search beam width (raised to ``k`` when smaller).
        replicas: DSNs of read replicas: searches and reads go to them (round robin), writes
            to ``connection``.
        pool_size: Maximum connections of each pool the store opens itself.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_fusion.postgres import embedded_server
        >>> with embedded_server() as dsn:
        ...     store = PostgresHybridStore(dsn, DeterministicFakeEmbedding(size=8))
        ...     store.add_texts(["solar panels", "wind turbines"], ids=["a", "b"])
        ...     [d.id for d, s in store.keyword_search("solar", k=5)]
        ...     store.close()
        ['a', 'b']
        ['a']

    """

    def __init__(
        self,
        connection: Any,
        embedding: Embeddings | None = None,
        *,
        collection: str = "langchain_fusion",
        tokenizer: Tokenizer | None = None,
        k1: float | None = None,
        b: float | None = None,
        bm25_method: str = "lucene",
        dense_search: str = "auto",
        hnsw_threshold: int = 50_000,
        hnsw_m: int = 16,
        ef_construction: int = 64,
        ef_search: int = 100,
        replicas: Sequence[str] = (),
        pool_size: int = 4,
    ) -> None:
        self.collection = _check_collection(collection)
        if bm25_method not in _METHODS:
            raise ValueError(
                f"bm25_method {bm25_method!r} is not computed in PostgreSQL; use 'lucene'"
            )
        if dense_search not in ("auto", "hnsw", "exact"):
            raise ValueError(
                f"dense_search must be 'auto', 'hnsw' or 'exact', got {dense_search!r}"
            )
        if tokenizer is not None and not isinstance(tokenizer, Tokenizer):
            raise TypeError(
                f"tokenizer must be a langchain_fusion Tokenizer, got {type(tokenizer).__name__}"
            )
        from langchain_fusion.lexical.scoring import validate_params

        validate_params(
            k1=1.5 if k1 is None else k1, b=0.75 if b is None else b, method="lucene", delta=0.5
        )
        self._embedding = embedding
        self._given_tokenizer = tokenizer
        self._given_k1, self._given_b = k1, b
        self.dense_search = dense_search
        self.hnsw_threshold = int(hnsw_threshold)
        self.hnsw_m = int(hnsw_m)
        self.ef_construction = int(ef_construction)
        self.ef_search = int(ef_search)
        self._names = _Names(self.collection)
        self._lock = threading.RLock()
        self._term_ids: dict[str, int] = {}
        self._term_uid: str | None = None
        self._info: _Collection | None = None
        self._vector_info: Any = None
        self._dsn: str | None = None
        self._pool: Any = None
        self._apools: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._async_only = False
        self._own_pool = False
        self._pool_size = int(pool_size)
        self._replica_dsns = [str(r) for r in replicas]
        self._replica_pools: list[Any] = []
        self._next_replica = 0
        self._joint = _JointSearcher(self)
        self._open(connection)

    # ------------------------------------------------------------------ connections

    def _open(self, connection: Any) -> None:
        try:
            import psycopg
            import psycopg_pool
        except ImportError:
            raise PostgresStoreError(
                "the PostgreSQL store needs psycopg 3 and psycopg-pool: "
                "pip install 'langchain-fusion[postgres]'"
            ) from None
        if isinstance(connection, str):
            self._dsn = connection
            self._check_server(connection)
            self._pool = self._new_pool(connection)
            self._own_pool = True
        elif isinstance(connection, psycopg_pool.ConnectionPool):
            self._pool = connection
        elif isinstance(connection, psycopg_pool.AsyncConnectionPool):
            self._async_only = True
            self._apool_given = connection
            return
        elif isinstance(connection, psycopg.Connection):
            raise TypeError(
                "connection must be a DSN string or a psycopg_pool.ConnectionPool, not a single "
                "psycopg.Connection (the store runs queries concurrently)"
            )
        else:
            raise TypeError(
                f"connection must be a DSN string or a psycopg_pool connection pool, got "
                f"{type(connection).__name__}"
            )
        for dsn in self._replica_dsns:
            self._check_server(dsn)
            self._replica_pools.append(self._new_pool(dsn))
        with self._conn() as conn:
            self._setup(conn)

    def _new_pool(self, dsn: str) -> Any:
        from psycopg_pool import ConnectionPool

        return ConnectionPool(
            dsn,
            min_size=1,
            max_size=self._pool_size,
            kwargs={"autocommit": True},
            open=True,
            name=f"langchain_fusion:{self.collection}",
        )

    @staticmethod
    def _check_server(dsn: str) -> None:
        """Connect once with a short timeout: a down server is a one-line error, not a hang."""
        import psycopg

        try:
            with psycopg.connect(dsn, connect_timeout=10, autocommit=True) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PostgresStoreError(
                f"cannot connect to PostgreSQL ({first}); check that the server is running and "
                f"the DSN is right, or use langchain_fusion.postgres.embedded_server()"
            ) from None

    def _register(self, conn: Any) -> None:
        if conn.adapters.types.get("vector") is not None:
            return
        if self._vector_info is None:
            from psycopg.types import TypeInfo

            info = TypeInfo.fetch(conn, "vector")
            if info is None:
                raise PostgresStoreError(_NO_PGVECTOR)
            self._vector_info = info
        _register_vector(conn, self._vector_info)

    @contextmanager
    def _conn(self, *, read: bool = False) -> Iterator[Any]:
        import psycopg

        if self._async_only:
            raise PostgresStoreError(
                "this store was given an AsyncConnectionPool: use the async methods "
                "(aadd_texts, asimilarity_search, FusionRetriever.ainvoke...) or pass a DSN"
            )
        pool = self._pool
        if read and self._replica_pools:
            with self._lock:
                pool = self._replica_pools[self._next_replica % len(self._replica_pools)]
                self._next_replica += 1
        try:
            with pool.connection() as conn:
                if conn.autocommit is False and conn.info.transaction_status == 0:
                    conn.autocommit = True
                with contextlib.suppress(psycopg.Error):  # no pgvector: _setup says how to fix it
                    self._register(conn)
                yield conn
        except PostgresStoreError:
            raise
        except psycopg.OperationalError as exc:
            raise _friendly(exc, "; is the server running?") from None

    async def _aconn_pool(self) -> Any:
        if self._async_only:
            return self._apool_given
        from psycopg_pool import AsyncConnectionPool

        loop = asyncio.get_running_loop()
        pool = self._apools.get(loop)
        if pool is None:
            dsn = self._dsn or ""
            if self._replica_dsns:
                dsn = self._replica_dsns[self._next_replica % len(self._replica_dsns)]
                self._next_replica += 1
            pool = AsyncConnectionPool(
                dsn, min_size=0, max_size=self._pool_size, kwargs={"autocommit": True}, open=False
            )
            await pool.open()
            self._apools[loop] = pool
        return pool

    def close(self) -> None:
        """Close the connection pools the store opened (a pool passed in is left open).

        Example:
            >>> PostgresHybridStore.close  # doctest: +ELLIPSIS
            <function PostgresHybridStore.close at ...>

        """
        if self._own_pool and self._pool is not None:
            self._pool.close()
        for pool in self._replica_pools:
            pool.close()
        self._replica_pools = []

    async def aclose(self) -> None:
        """Close the async pool the store opened for the current event loop.

        `close` closes the sync pools.
        """
        loop = asyncio.get_running_loop()
        pool = self._apools.pop(loop, None)
        if pool is not None:
            await pool.close()

    def __enter__(self) -> PostgresHybridStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ schema

    def _setup(self, conn: Any) -> None:
        import psycopg
        from psycopg import sql

        try:
            has = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            ).fetchone()
            if has is None:
                try:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                except psycopg.Error:
                    raise PostgresStoreError(_NO_PGVECTOR) from None
            self._register(conn)
            conn.execute(sql.SQL(_CREATE_REGISTRY).format(registry=self._names.registry))
        except psycopg.errors.UniqueViolation:
            pass  # another process created the registry at the same time
        except psycopg.Error as exc:
            raise _friendly(exc) from None
        info = self._read_info(conn)
        if info is not None:
            self._check_config(info)

    def _read_info(self, conn: Any, *, lock: bool = False) -> _Collection | None:
        from psycopg import sql

        query = sql.SQL(
            "SELECT uid, schema_version, config, n_docs, total_len FROM {} WHERE name = %s"
            + (" FOR UPDATE" if lock else "")
        ).format(self._names.registry)
        row = conn.execute(query, [self.collection]).fetchone()
        if row is None:
            self._info = None
            return None
        info = _Collection(row[0], int(row[1]), dict(row[2]), int(row[3]), int(row[4]))
        if info.version > SCHEMA_VERSION:
            raise PostgresStoreError(
                f"collection {self.collection!r} has schema version {info.version}, newer than "
                f"this langchain-fusion understands ({SCHEMA_VERSION}); upgrade: "
                f"pip install -U 'langchain-fusion[postgres]'"
            )
        self._info = info
        return info

    def _check_config(self, info: _Collection) -> None:
        cfg = info.config
        tok = self._given_tokenizer
        if tok is not None and tok.to_config() != cfg["tokenizer"]:
            raise PostgresStoreError(
                f"collection {self.collection!r} was built with another tokenizer "
                f"({cfg['tokenizer']}); open it with tokenizer=None (the stored one)"
            )
        for name, given in (("k1", self._given_k1), ("b", self._given_b)):
            if given is not None and abs(float(given) - float(cfg[name])) > 1e-12:
                raise PostgresStoreError(
                    f"collection {self.collection!r} was built with {name}={cfg[name]}, not "
                    f"{given}; open it with {name}=None, or change it with set_bm25_params()"
                )
        stored = cfg.get("embedding") or {}
        mine = _identity(self._embedding, None)
        if mine is not None and stored:
            a, b_ = stored.get("model"), mine.get("model")
            dims = (stored.get("dim"), mine.get("dim"))
            if (a and b_ and not same_model(str(a), str(b_))) or (
                dims[1] is not None and dims[0] is not None and dims[0] != dims[1]
            ):
                raise PostgresStoreError(
                    f"collection {self.collection!r} was built with {describe(stored)} "
                    f"(dimension {stored.get('dim')}), not {describe(mine)}; open it with "
                    f"the same embedding model"
                )

    def _config_for(self, dim: int) -> dict[str, Any]:
        tok = self._given_tokenizer or Tokenizer()
        return {
            "dim": int(dim),
            "embedding": _identity(self._embedding, dim) or {},
            "tokenizer": tok.to_config(),
            "k1": float(self._given_k1 if self._given_k1 is not None else 1.5),
            "b": float(self._given_b if self._given_b is not None else 0.75),
            "method": "lucene",
            "hnsw": {"m": self.hnsw_m, "ef_construction": self.hnsw_m and self.ef_construction},
        }

    def _create(self, conn: Any, dim: int) -> _Collection:
        """Create the collection's tables (in the caller's transaction) and lock its row."""
        from psycopg import sql
        from psycopg.types.json import Jsonb

        config = self._config_for(dim)
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (name, uid, schema_version, config) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (name) DO NOTHING"
            ).format(self._names.registry),
            [self.collection, uuid.uuid4().hex, SCHEMA_VERSION, Jsonb(config)],
        )
        info = self._read_info(conn, lock=True)
        assert info is not None
        n = self._names
        for stmt in _CREATE_TABLES:
            conn.execute(
                sql.SQL(stmt).format(
                    docs=n.docs,
                    terms=n.terms,
                    postings=n.postings,
                    hnsw=n.hnsw,
                    dim=sql.Literal(int(info.config["dim"])),
                    m=sql.Literal(int(info.config["hnsw"]["m"])),
                    efc=sql.Literal(int(info.config["hnsw"]["ef_construction"])),
                    storage=sql.SQL("PLAIN" if int(info.config["dim"]) <= 1500 else "MAIN"),
                )
            )
        return info

    def _refresh(self) -> _Collection | None:
        with self._conn(read=True) as conn:
            return self._read_info(conn)

    @property
    def info(self) -> _Collection | None:
        """The collection's registry row as last read (``None`` before the first write)."""
        return self._info

    @property
    def embeddings(self) -> Embeddings:
        """The embedding model (the local default model when none was given)."""
        if self._embedding is None:
            from langchain_fusion.dense.embeddings import default_embeddings

            self._embedding = default_embeddings()
        return self._embedding

    @property
    def tokenizer(self) -> Tokenizer:
        """The BM25 tokenizer (the stored one for an existing collection)."""
        if self._info is not None:
            return Tokenizer.from_config(self._info.config["tokenizer"])
        return self._given_tokenizer or Tokenizer()

    @property
    def bm25_params(self) -> dict[str, Any]:
        """``{"k1", "b", "method"}`` of the collection."""
        if self._info is not None:
            c = self._info.config
            return {"k1": float(c["k1"]), "b": float(c["b"]), "method": c["method"]}
        cfg = self._config_for(1)
        return {"k1": cfg["k1"], "b": cfg["b"], "method": "lucene"}

    def set_bm25_params(self, *, k1: float | None = None, b: float | None = None) -> None:
        """Change k1/b of the collection (no re-indexing: they only enter the query SQL)."""
        from psycopg import sql

        from langchain_fusion.lexical.scoring import validate_params

        cur = self.bm25_params
        new_k1 = cur["k1"] if k1 is None else float(k1)
        new_b = cur["b"] if b is None else float(b)
        validate_params(k1=new_k1, b=new_b, method="lucene", delta=0.5)
        self._given_k1, self._given_b = new_k1, new_b
        if self._info is None:
            return
        with self._conn() as conn:
            conn.execute(
                sql.SQL(
                    "UPDATE {} SET config = config || jsonb_build_object('k1', %s::float8, "
                    "'b', %s::float8) WHERE name = %s"
                ).format(self._names.registry),
                [new_k1, new_b, self.collection],
            )
            self._read_info(conn)

    def __len__(self) -> int:
        info = self._refresh()
        return 0 if info is None else info.n_docs

    def __repr__(self) -> str:
        return f"PostgresHybridStore(collection={self.collection!r})"

    # ------------------------------------------------------------------ writing

    def _prepare(
        self,
        texts: Sequence[str],
        vectors: Any,
        metadatas: Sequence[dict[str, Any] | None] | None,
        ids: Sequence[str | None] | None,
    ) -> tuple[list[str], list[str], list[str], NDArray[np.float32]]:
        n = len(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] must be a str, got {type(t).__name__}")
            _no_nul(t, f"texts[{i}]")
        if metadatas is not None and len(metadatas) != n:
            raise ValueError(f"got {len(metadatas)} metadatas for {n} texts")
        if ids is not None and len(ids) != n:
            raise ValueError(f"got {len(ids)} ids for {n} texts")
        out_ids = []
        for i in range(n):
            raw = None if ids is None else ids[i]
            doc_id = uuid.uuid4().hex if raw is None else str(raw)
            if not doc_id:
                raise ValueError(f"ids[{i}] is empty")
            out_ids.append(_no_nul(doc_id, f"id {doc_id!r}"))
        metas = [
            _metadata_json(None if metadatas is None else metadatas[i], f"of document {i}")
            for i in range(n)
        ]
        try:
            arr = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError):
            raise ValueError("embeddings must be a (n, dim) array of floats") from None
        if arr.ndim != 2 or arr.shape[0] != n:
            raise ValueError(f"embeddings must have shape ({n}, dim), got {arr.shape}")
        if n and not np.isfinite(arr).all():
            raise ValueError("embeddings contain NaN or infinite values")
        if self._info is not None and n and arr.shape[1] != int(self._info.config["dim"]):
            raise ValueError(
                f"embeddings have dimension {arr.shape[1]}, but collection {self.collection!r} "
                f"holds vectors of dimension {self._info.config['dim']}"
            )
        return out_ids, list(texts), metas, arr

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and add (or replace, by id) texts; one transaction.

        Example:
            >>> PostgresHybridStore.add_texts.__name__
            'add_texts'

        """
        texts = list(texts)
        if not texts:
            return []
        vectors = self.embeddings.embed_documents(texts)
        return self.add_embeddings(texts, vectors, metadatas=metadatas, ids=ids)

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Add documents; ``Document.id`` (or ``ids=``) is the id, a new uuid otherwise.

        Example:
            >>> PostgresHybridStore.add_documents.__name__
            'add_documents'

        """
        ids = kwargs.pop("ids", None)
        if ids is None:
            ids = [d.id for d in documents]
        return self.add_texts(
            [d.page_content for d in documents],
            [dict(d.metadata) for d in documents],
            ids=ids,
        )

    def add_embeddings(
        self,
        texts: Sequence[str],
        embeddings: Any,
        *,
        metadatas: Sequence[dict[str, Any] | None] | None = None,
        ids: Sequence[str | None] | None = None,
    ) -> list[str]:
        """Add texts with precomputed vectors (no embedding call); upsert by id.

        The vectors, BM25 terms, postings and statistics are written in ONE transaction: a
        failure (or a killed process) leaves the collection as it was.

        Example:
            >>> PostgresHybridStore.add_embeddings.__name__
            'add_embeddings'

        """
        import psycopg

        ids_out, texts_l, metas, arr = self._prepare(texts, embeddings, metadatas, ids)
        if not ids_out:
            return []
        # Last occurrence of a repeated id wins (as an upsert would).
        last = {doc_id: i for i, doc_id in enumerate(ids_out)}
        keep = sorted(last.values())
        tokenizer = self.tokenizer
        token_lists = tokenizer.tokenize_many([texts_l[i] for i in keep])
        try:
            with self._conn() as conn, conn.transaction():
                info = self._read_info(conn, lock=True)
                if info is None:
                    info = self._create(conn, arr.shape[1])
                elif tokenizer.to_config() != info.config["tokenizer"]:
                    token_lists = Tokenizer.from_config(info.config["tokenizer"]).tokenize_many(
                        [texts_l[i] for i in keep]
                    )
                dim = int(info.config["dim"])
                if arr.shape[1] != dim:
                    raise ValueError(
                        f"embeddings have dimension {arr.shape[1]}, but collection "
                        f"{self.collection!r} holds vectors of dimension {dim}"
                    )
                self._delete_in(conn, [ids_out[i] for i in keep])
                term_ids = self._term_ids_for(conn, info, token_lists)
                uid = info.uid
                self._stage(conn, keep, ids_out, texts_l, metas, arr, token_lists, term_ids)
                n = self._names
                from psycopg import sql

                conn.execute(
                    sql.SQL(_INSERT).format(
                        docs=n.docs, postings=n.postings, terms=n.terms, registry=n.registry
                    ),
                    {"collection": self.collection},
                )
                self._read_info(conn)
        except (ValueError, TypeError, PostgresStoreError):
            raise
        except psycopg.Error as exc:
            raise _friendly(exc) from None
        if self._term_uid == uid:
            self._term_ids = term_ids
        return ids_out

    def _term_ids_for(
        self, conn: Any, info: _Collection, token_lists: list[list[str]]
    ) -> dict[str, int]:
        from psycopg import sql

        if self._term_uid != info.uid:
            self._term_ids = {}
            self._term_uid = info.uid
        cache = self._term_ids
        vocab = {t for tokens in token_lists for t in tokens}
        for t in vocab:
            _no_nul(t, "a token")
        missing = sorted(t for t in vocab if t not in cache)
        if missing:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (term) SELECT unnest(%s::text[]) ON CONFLICT (term) DO NOTHING"
                ).format(self._names.terms),
                [missing],
            )
            rows = conn.execute(
                sql.SQL("SELECT term, id FROM {} WHERE term = ANY(%s)").format(self._names.terms),
                [missing],
            ).fetchall()
            fresh = dict(rows)
        else:
            fresh = {}
        # The cache takes the new ids only after the commit (a rollback drops those rows).
        merged = dict(cache)
        merged.update(fresh)
        return merged

    def _stage(
        self,
        conn: Any,
        keep: list[int],
        ids: list[str],
        texts: list[str],
        metas: list[str],
        arr: NDArray[np.float32],
        token_lists: list[list[str]],
        term_ids: dict[str, int],
    ) -> None:
        from psycopg.types.json import Jsonb

        conn.execute(_STAGING)
        with conn.cursor().copy(
            "COPY lf_staging (ord, id, content, metadata, embedding, terms, tfs, len) "
            "FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int4", "text", "text", "jsonb", "vector", "int4[]", "int4[]", "int4"])
            for ord_, (i, tokens) in enumerate(zip(keep, token_lists, strict=True)):
                counts = Counter(tokens)
                copy.write_row(
                    (
                        ord_,
                        ids[i],
                        texts[i],
                        Jsonb(metas[i], dumps=_as_is),
                        Vector(arr[i]),
                        [term_ids[t] for t in counts],
                        list(counts.values()),
                        len(tokens),
                    )
                )

    def _delete_in(self, conn: Any, ids: list[str]) -> int:
        from psycopg import sql

        n = self._names
        row = conn.execute(
            sql.SQL(_DELETE).format(
                docs=n.docs, postings=n.postings, terms=n.terms, registry=n.registry
            ),
            {"ids": ids, "collection": self.collection},
        ).fetchone()
        return int(row[0]) if row else 0

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete documents by id (one transaction; statistics updated with them).

        Returns:
            True when at least one document was deleted, False otherwise.

        Example:
            >>> PostgresHybridStore.delete.__name__
            'delete'

        """
        import psycopg

        if ids is None:
            raise ValueError("delete needs ids=[...]; to drop the whole collection use drop()")
        ids = [_no_nul(str(i), f"id {i!r}") for i in ids]
        if not ids:
            return False
        try:
            with self._conn() as conn, conn.transaction():
                if self._read_info(conn, lock=True) is None:
                    return False
                deleted = self._delete_in(conn, ids)
                self._read_info(conn)
        except psycopg.Error as exc:
            raise _friendly(exc) from None
        return deleted > 0

    def drop(self) -> None:
        """Drop the collection's tables and registry row (irreversible).

        Example:
            >>> PostgresHybridStore.drop.__name__
            'drop'

        """
        from psycopg import sql

        n = self._names
        with self._conn() as conn, conn.transaction():
            for table in (n.postings, n.terms, n.docs):
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE name = %s").format(n.registry), [self.collection]
            )
        self._info = None
        self._term_ids = {}

    def drop_vector_index(self) -> None:
        """Drop the HNSW index (before a bulk load; `build_vector_index` makes it again).

        Dense search stays correct without it (exact scan), only slower.

        Example:
            >>> PostgresHybridStore.drop_vector_index.__name__
            'drop_vector_index'

        """
        from psycopg import sql

        with self._conn() as conn:
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(self._names.hnsw))

    def build_vector_index(self, *, maintenance_work_mem: str = "1GB") -> None:
        """(Re)build the HNSW index if it is missing (after a bulk load: much faster in one go).

        Example:
            >>> PostgresHybridStore.build_vector_index.__name__
            'build_vector_index'

        """
        from psycopg import sql

        info = self._refresh()
        if info is None:
            return
        if not re.fullmatch(r"[0-9]+[kMG]B", maintenance_work_mem):
            raise ValueError(
                f"maintenance_work_mem must look like '1GB', got {maintenance_work_mem!r}"
            )
        n = self._names
        with self._conn() as conn:
            conn.execute(
                sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(maintenance_work_mem))
            )
            conn.execute(
                sql.SQL(_CREATE_TABLES[3]).format(
                    docs=n.docs,
                    hnsw=n.hnsw,
                    m=sql.Literal(int(info.config["hnsw"]["m"])),
                    efc=sql.Literal(int(info.config["hnsw"]["ef_construction"])),
                )
            )
            conn.execute("RESET maintenance_work_mem")

    def optimize(self) -> None:
        """``VACUUM ANALYZE`` the collection (after a bulk load: index-only postings scans).

        Example:
            >>> PostgresHybridStore.optimize.__name__
            'optimize'

        """
        from psycopg import sql

        n = self._names
        with self._conn() as conn:
            for table in (n.docs, n.terms, n.postings):
                conn.execute(sql.SQL("VACUUM ANALYZE {}").format(table))

    # ------------------------------------------------------------------ reading

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Documents with these ids (unknown ids are skipped), in the order asked.

        Example:
            >>> PostgresHybridStore.get_by_ids.__name__
            'get_by_ids'

        """
        found = self._load([str(i) for i in ids])
        return [doc for doc in found if doc is not None]

    def _load(self, ids: Sequence[str]) -> list[Document | None]:
        from psycopg import sql

        if not ids:
            return []
        for i in ids:
            _no_nul(i, f"id {i!r}")
        with self._conn(read=True) as conn:
            if self._info is None and self._read_info(conn) is None:
                return [None] * len(ids)
            rows = conn.execute(
                sql.SQL("SELECT id, content, metadata FROM {} WHERE id = ANY(%s)").format(
                    self._names.docs
                ),
                [list(ids)],
            ).fetchall()
        by_id = {r[0]: Document(page_content=r[1], metadata=r[2], id=r[0]) for r in rows}
        return [by_id.get(i) for i in ids]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Relevance in [0, 1] from cosine similarity: ``(1 + cosine) / 2``."""
        return lambda similarity: (1.0 + similarity) / 2.0

    def embed_query(self, query: str) -> NDArray[np.float32]:
        """Embed a query with the store's model, checked against the collection's dimension."""
        vec = np.asarray(self.embeddings.embed_query(query), dtype=np.float32)
        self._check_query_vector(vec)
        return vec

    def _check_query_vector(self, vec: NDArray[np.float32]) -> None:
        if vec.ndim != 1 or not np.isfinite(vec).all():
            raise ValueError("the query embedding must be a finite 1-D vector")
        if self._info is not None and vec.shape[0] != int(self._info.config["dim"]):
            raise ValueError(
                f"the query embedding has dimension {vec.shape[0]}, but collection "
                f"{self.collection!r} holds vectors of dimension {self._info.config['dim']}"
            )

    def _exact(self, exact: bool | None) -> bool:
        if exact is not None:
            return bool(exact)
        if self.dense_search == "exact":
            return True
        if self.dense_search == "hnsw":
            return False
        return self._info is None or self._info.n_docs < self.hnsw_threshold

    @staticmethod
    def _check_k(k: Any) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        return int(k)

    def _query_params(
        self,
        query: str | Mapping[str, float] | None,
        vector: NDArray[np.float32] | None,
        k: int,
        filter: Any,
    ) -> tuple[dict[str, Any], str, bool]:
        self._check_k(k)
        cond, fparams = filter_sql(filter)
        counts: Mapping[str, float]
        if query is None:
            counts = {}
        elif isinstance(query, str):
            counts = Counter(self.tokenizer(query))
        else:  # {term: weight} over index terms (an expanded query)
            counts = {str(t): float(w) for t, w in query.items() if float(w) > 0}
        for t in counts:
            _no_nul(t, "the query")
        bm = self.bm25_params
        params: dict[str, Any] = {
            "collection": self.collection,
            "qterms": list(counts.keys()),
            "qtf": [float(v) for v in counts.values()],
            "k1": bm["k1"],
            "b": bm["b"],
            "k": int(k),
            "kk": int(k),
            "qvec": Vector(vector) if vector is not None else None,
        }
        params.update(fparams)
        return params, cond, filter is not None

    def joint_search(
        self,
        query: str | Mapping[str, float],
        k: int,
        *,
        k_keyword: int | None = None,
        filter: Any = None,
        dense: bool = True,
        keyword: bool = True,
        exact: bool | None = None,
        query_vector: Any = None,
    ) -> JointResult:
        """Dense top-``k`` and BM25 top-``k`` with every candidate's two scores, in ONE statement.

        Example:
            >>> PostgresHybridStore.joint_search.__name__
            'joint_search'

        """
        import psycopg

        vector = self._vector_for(query, query_vector, dense)
        if self._info is None and self._refresh() is None:
            return JointResult([], [], {}, {}, {}, vector)
        params, cond, filtered = self._query_params(query if keyword else None, vector, k, filter)
        if k_keyword is not None:
            params["kk"] = self._check_k(k_keyword)
        stmt = self._joint_statement(filtered, self._exact(exact), dense, keyword, cond)
        try:
            with self._conn(read=True) as conn, conn.pipeline():
                conn.execute(
                    "SELECT set_config('hnsw.ef_search', %s, false), "
                    "set_config('hnsw.iterative_scan', 'relaxed_order', false)",
                    [str(max(self.ef_search, int(k)))],
                )
                rows = conn.execute(stmt, params).fetchall()
        except psycopg.Error as exc:
            raise _friendly(exc) from None
        return self._joint_result(rows, vector)

    async def ajoint_search(
        self,
        query: str,
        k: int,
        *,
        filter: Any = None,
        dense: bool = True,
        keyword: bool = True,
        exact: bool | None = None,
        query_vector: Any = None,
    ) -> JointResult:
        """Async `joint_search` (psycopg async; the query is embedded in a worker thread)."""
        import psycopg

        if query_vector is None and dense:
            vector: NDArray[np.float32] | None = np.asarray(
                await self.embeddings.aembed_query(query), dtype=np.float32
            )
            assert vector is not None
            self._check_query_vector(vector)
        else:
            vector = self._vector_for(query, query_vector, dense)
        if not self._async_only and not self._replica_dsns and self._dsn is None:
            return await asyncio.to_thread(
                self.joint_search,
                query,
                k,
                filter=filter,
                dense=dense,
                keyword=keyword,
                exact=exact,
                query_vector=vector,
            )
        pool = await self._aconn_pool()
        try:
            async with pool.connection() as conn:
                if self._info is None:
                    await self._aread_info(conn)
                    if self._info is None:
                        return JointResult([], [], {}, {}, {}, vector)
                params, cond, filtered = self._query_params(
                    query if keyword else None, vector, k, filter
                )
                stmt = self._joint_statement(filtered, self._exact(exact), dense, keyword, cond)
                await self._aregister(conn)
                async with conn.pipeline():
                    await conn.execute(
                        "SELECT set_config('hnsw.ef_search', %s, false), "
                        "set_config('hnsw.iterative_scan', 'relaxed_order', false)",
                        [str(max(self.ef_search, int(k)))],
                    )
                    cur = await conn.execute(stmt, params)
                    rows = await cur.fetchall()
        except psycopg.Error as exc:
            raise _friendly(exc) from None
        return self._joint_result(rows, vector)

    async def _aregister(self, conn: Any) -> None:
        if conn.adapters.types.get("vector") is not None:
            return
        from psycopg.types import TypeInfo

        if self._vector_info is None:
            info = await TypeInfo.fetch(conn, "vector")
            if info is None:
                raise PostgresStoreError(_NO_PGVECTOR)
            self._vector_info = info
        _register_vector(conn, self._vector_info)

    async def _aread_info(self, conn: Any) -> None:
        from psycopg import sql

        cur = await conn.execute(
            sql.SQL(
                "SELECT uid, schema_version, config, n_docs, total_len FROM {} WHERE name = %s"
            ).format(self._names.registry),
            [self.collection],
        )
        row = await cur.fetchone()
        if row is None:
            self._info = None
            return
        info = _Collection(row[0], int(row[1]), dict(row[2]), int(row[3]), int(row[4]))
        if info.version > SCHEMA_VERSION:
            raise PostgresStoreError(
                f"collection {self.collection!r} has schema version {info.version}, newer than "
                f"this langchain-fusion understands ({SCHEMA_VERSION}); upgrade: "
                f"pip install -U 'langchain-fusion[postgres]'"
            )
        self._info = info

    def _vector_for(
        self, query: str | Mapping[str, float], query_vector: Any, dense: bool
    ) -> NDArray[np.float32] | None:
        if not dense:
            return None
        if query_vector is not None:
            vec = np.asarray(query_vector, dtype=np.float32)
            self._check_query_vector(vec)
            return vec
        if not isinstance(query, str):
            raise ValueError("a {term: weight} query needs query_vector= for the dense side")
        return self.embed_query(query)

    def _joint_statement(
        self, filtered: bool, exact: bool, dense: bool, keyword: bool, cond: str
    ) -> Any:
        from psycopg import sql

        n = self._names
        text = _joint_sql(filtered, exact, dense, keyword)
        if not dense:
            text = text.replace(
                "1 - (d.embedding <=> %(qvec)s::vector) AS dense", "NULL::float8 AS dense"
            )
        return sql.SQL(text).format(
            docs=n.docs,
            terms=n.terms,
            postings=n.postings,
            registry=n.registry,
            filter=sql.SQL(cond),  # fixed SQL text with named placeholders, no values
        )

    def _joint_result(self, rows: list[Any], vector: NDArray[np.float32] | None) -> JointResult:
        dense_rank: list[tuple[int, str]] = []
        bm_rank: list[tuple[int, str]] = []
        dense: dict[str, float] = {}
        bm25: dict[str, float] = {}
        docs: dict[str, Document] = {}
        for doc_id, dr, br, ds, bs, content, meta, n_docs in rows:
            if dr is not None:
                dense_rank.append((int(dr), doc_id))
            if br is not None:
                bm_rank.append((int(br), doc_id))
            if ds is not None:
                dense[doc_id] = float(ds)
            bm25[doc_id] = float(bs)
            docs[doc_id] = Document(page_content=content, metadata=meta, id=doc_id)
            if self._info is not None and n_docs is not None:
                self._info.n_docs = int(n_docs)
        # HNSW with relaxed ordering may return the dense list slightly out of order
        dense_ids = [i for _, i in sorted(dense_rank)]
        dense_ids.sort(key=lambda i: -dense[i])
        return JointResult(
            dense_ids=dense_ids,
            bm25_ids=[i for _, i in sorted(bm_rank)],
            dense=dense,
            bm25=bm25,
            docs=docs,
            query_vector=vector,
        )

    def score(
        self, query: str | Mapping[str, float], ids: Sequence[str], *, query_vector: Any = None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Exact cosine and BM25 scores of given documents (NaN for unknown ids).

        Example:
            >>> PostgresHybridStore.score.__name__
            'score'

        """
        from psycopg import sql

        ids = [_no_nul(str(i), f"id {i!r}") for i in ids]
        dense_out = np.full(len(ids), np.nan)
        bm_out = np.full(len(ids), np.nan)
        if not ids or (self._info is None and self._refresh() is None):
            return dense_out, bm_out
        vector = self._vector_for(query, query_vector, query_vector is not None)
        params, _, _ = self._query_params(query, vector, 1, None)
        params["ids"] = list(ids)
        dense_expr = (
            "1 - (ids.embedding <=> %(qvec)s::vector)" if vector is not None else "NULL::float8"
        )
        text = _SCORE_SQL.format(query_terms=_QUERY_TERMS, tfc=_TFC, dense=dense_expr)
        n = self._names
        stmt = sql.SQL(text).format(
            docs=n.docs, terms=n.terms, postings=n.postings, registry=n.registry
        )
        with self._conn(read=True) as conn:
            rows = conn.execute(stmt, params).fetchall()
        found = {doc_id: (ds, bs) for doc_id, ds, bs in rows}
        for j, doc_id in enumerate(ids):
            if doc_id in found:
                ds, bs = found[doc_id]
                if ds is not None:
                    dense_out[j] = float(ds)
                bm_out[j] = float(bs)
        return dense_out, bm_out

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Top-``k`` documents by cosine similarity (higher is better).

        Example:
            >>> PostgresHybridStore.similarity_search_with_score.__name__
            'similarity_search_with_score'

        """
        return self.similarity_search_with_score_by_vector(
            list(self.embed_query(query)), k, filter=filter, **kwargs
        )

    def similarity_search_with_score_by_vector(
        self, embedding: Sequence[float], k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Top-``k`` documents for a query vector, with cosine similarities."""
        res = self.joint_search(
            "", k, filter=filter, keyword=False, query_vector=embedding, exact=kwargs.get("exact")
        )
        return [(res.docs[i], res.dense[i]) for i in res.dense_ids]

    def similarity_search(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[Document]:
        """Top-``k`` documents by cosine similarity.

        Example:
            >>> PostgresHybridStore.similarity_search.__name__
            'similarity_search'

        """
        return [d for d, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[Document]:
        """Top-``k`` documents for a query vector."""
        return [
            d
            for d, _ in self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)
        ]

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Async `similarity_search_with_score` (psycopg async)."""
        res = await self.ajoint_search(query, k, filter=filter, keyword=False)
        return [(res.docs[i], res.dense[i]) for i in res.dense_ids]

    async def asimilarity_search(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[Document]:
        """Async `similarity_search` (psycopg async)."""
        pairs = await self.asimilarity_search_with_score(query, k, filter, **kwargs)
        return [d for d, _ in pairs]

    def keyword_search(
        self, query: str, k: int = 4, filter: Any = None
    ) -> list[tuple[Document, float]]:
        """Top-``k`` documents by BM25 (computed in PostgreSQL), with scores.

        Example:
            >>> PostgresHybridStore.keyword_search.__name__
            'keyword_search'

        """
        res = self.joint_search(query, k, filter=filter, dense=False)
        return [(res.docs[i], res.bm25[i]) for i in res.bm25_ids]

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        connection: Any = None,
        collection: str = "langchain_fusion",
        **kwargs: Any,
    ) -> PostgresHybridStore:
        """Create (or open) a collection and add texts.

        Example:
            >>> PostgresHybridStore.from_texts.__name__
            'from_texts'

        """
        if connection is None:
            raise ValueError("from_texts needs connection= (a DSN or a psycopg_pool pool)")
        store = cls(connection, embedding, collection=collection, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    def from_documents(
        cls,
        documents: list[Document],
        embedding: Embeddings | None = None,
        *,
        connection: Any = None,
        collection: str = "langchain_fusion",
        **kwargs: Any,
    ) -> PostgresHybridStore:
        """Create (or open) a collection and add documents (their ids kept).

        Example:
            >>> PostgresHybridStore.from_documents.__name__
            'from_documents'

        """
        if connection is None:
            raise ValueError("from_documents needs connection= (a DSN or a psycopg_pool pool)")
        ids = kwargs.pop("ids", None)
        store = cls(connection, embedding, collection=collection, **kwargs)
        store.add_documents(list(documents), ids=ids)
        return store

    # ------------------------------------------------------------------ fusion

    def as_sources(self) -> list[Source]:
        """Return the dense and BM25 sides as fusion sources sharing one joint searcher.

        Example:
            >>> PostgresHybridStore.as_sources.__name__
            'as_sources'

        """
        from langchain_fusion.postgres._sources import PostgresDenseSource, PostgresKeywordSource

        return [PostgresDenseSource(self), PostgresKeywordSource(self)]

    @property
    def backend(self) -> Any:
        """Return this store as a ``langchain_fusion.backend.Backend`` (with ``search_joint``).

        Example:
            >>> PostgresHybridStore.backend.__doc__.split()[0]
            'Return'

        """
        from langchain_fusion.postgres._backend import PostgresBackend

        return PostgresBackend(self)

    @property
    def joint(self) -> _JointSearcher:
        """The joint searcher shared by this store's sources."""
        return self._joint


class _JointSearcher:
    """Runs both sides of a store's search in one statement for `FusionRetriever`."""

    def __init__(self, store: PostgresHybridStore) -> None:
        self.store = store

    def _split(
        self, res: JointResult, sources: Sequence[Source], query_text: str
    ) -> list[Candidates]:
        from langchain_fusion.sources import Candidates

        store = self.store
        out: list[Candidates] = []
        for src in sources:
            dense_side = getattr(src, "kind", "") == "dense"
            ids = res.dense_ids if dense_side else res.bm25_ids
            table = res.dense if dense_side else res.bm25
            query = res.query_vector

            def scorer(
                other: Sequence[str],
                table: dict[str, float] = table,
                dense_side: bool = dense_side,
                query_vector: Any = query,
            ) -> NDArray[np.float64]:
                values = np.array([table.get(i, math.nan) for i in other], dtype=np.float64)
                missing = [i for i, v in zip(other, values, strict=True) if math.isnan(v)]
                if missing:  # not a candidate of this search: ask the database
                    d, k = store.score(query_text, missing, query_vector=query_vector)
                    extra = dict(zip(missing, (d if dense_side else k).tolist(), strict=True))
                    values = np.array(
                        [extra.get(i, v) if math.isnan(v) else v for i, v in zip(other, values)]
                    )
                return values

            docs = res.docs

            def loader(
                wanted: Sequence[str], docs: dict[str, Document] = docs
            ) -> list[Document | None]:
                have = [docs.get(i) for i in wanted]
                if all(d is not None for d in have):
                    return have
                fetched = store._load([i for i, d in zip(wanted, have) if d is None])
                it = iter(fetched)
                return [d if d is not None else next(it) for d in have]

            out.append(
                Candidates(
                    ids=list(ids),
                    scores=np.array([table[i] for i in ids], dtype=np.float64),
                    loader=loader,
                    id_scorer=scorer,
                    query_vector=query if dense_side else None,
                )
            )
        return out

    def search(
        self, query: str, k: int, filter: Any, sources: Sequence[Source]
    ) -> list[Candidates]:
        """Every source's candidates for one query, from one SQL statement."""
        kinds = {getattr(s, "kind", "") for s in sources}
        res = self.store.joint_search(
            query, k, filter=filter, dense="dense" in kinds, keyword="bm25" in kinds
        )
        return self._split(res, sources, query)

    async def asearch(
        self, query: str, k: int, filter: Any, sources: Sequence[Source]
    ) -> list[Candidates]:
        """Async `search` (psycopg async)."""
        kinds = {getattr(s, "kind", "") for s in sources}
        res = await self.store.ajoint_search(
            query, k, filter=filter, dense="dense" in kinds, keyword="bm25" in kinds
        )
        return self._split(res, sources, query)


_NO_PGVECTOR = (
    "the pgvector extension is not enabled in this database and could not be created: run "
    "'CREATE EXTENSION vector;' as a superuser (managed PostgreSQL: enable the 'vector' "
    "extension; Debian: apt install postgresql-NN-pgvector)"
)
