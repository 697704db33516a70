"""Connections, pools and the registry row of ``PostgresHybridStore`` (a mixin).

Split out of ``_store.py``: opening pools (and replicas), registering pgvector, creating the
collection's tables, reading and checking its stored configuration and schema version.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langchain_core.embeddings import Embeddings

from langchain_fusion.embedding_checks import describe, same_model, same_precision
from langchain_fusion.lexical.tokenizer import Tokenizer
from langchain_fusion.postgres._schema import (
    _CREATE_REGISTRY,
    _CREATE_TABLES,
    _NO_PGVECTOR,
    SCHEMA_VERSION,
    PostgresStoreError,
    _Collection,
    _friendly,
    _identity,
    _Names,
    _register_vector,
)

__all__: list[str] = []


class _StoreBase:
    """Connections and schema of ``PostgresHybridStore`` (a mixin; see that class)."""

    collection: str
    dense_search: str
    hnsw_threshold: int
    hnsw_m: int
    ef_construction: int
    ef_search: int
    _embedding: Embeddings | None
    _given_tokenizer: Tokenizer | None
    _given_k1: float | None
    _given_b: float | None
    _names: _Names
    _lock: threading.RLock
    _term_ids: dict[str, int]
    _term_uid: str | None
    _stored_tokenizer: tuple[dict[str, Any], Tokenizer] | None
    _info: _Collection | None
    _vector_info: Any
    _dsn: str | None
    _pool: Any
    _apools: weakref.WeakKeyDictionary[Any, Any]
    _async_only: bool
    _own_pool: bool
    _pool_size: int
    _replica_dsns: list[str]
    _replica_pools: list[Any]
    _next_replica: int

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
            >>> from langchain_fusion.postgres import PostgresHybridStore
            >>> PostgresHybridStore.close  # doctest: +ELLIPSIS
            <function ...close at ...>

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
        if self._embedding is not None and stored:  # query with the precision it was built with
            self._embedding = same_precision(stored, self._embedding)
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
            if self._info is not None:  # an existing collection: the precision it was built with
                stored = self._info.config.get("embedding") or {}
                self._embedding = same_precision(stored, self._embedding)
        return self._embedding

    @property
    def tokenizer(self) -> Tokenizer:
        """The BM25 tokenizer (the stored one for an existing collection)."""
        if self._info is not None:
            config = self._info.config["tokenizer"]
            memo = self._stored_tokenizer
            if memo is None or memo[0] != config:  # one instance: its stemming cache stays warm
                memo = self._stored_tokenizer = (config, Tokenizer.from_config(config))
            return memo[1]
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
