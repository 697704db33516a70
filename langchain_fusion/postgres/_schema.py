"""Schema of ``PostgresHybridStore``: identifiers, DDL, version, value checks and pgvector.

Split out of ``_store.py`` (which describes the table layout); nothing here imports the store.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from langchain_fusion.embedding_checks import embedding_identity

__all__ = ["PostgresStoreError", "SCHEMA_VERSION"]

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
    if metadata is None or (isinstance(metadata, dict) and not metadata):
        return "{}"
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
    ) WITH (fillfactor = 50)""",  # room on each page: df updates stay HOT (no index writes)
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


_NO_PGVECTOR = (
    "the pgvector extension is not enabled in this database and could not be created: run "
    "'CREATE EXTENSION vector;' as a superuser (managed PostgreSQL: enable the 'vector' "
    "extension; Debian: apt install postgresql-NN-pgvector)"
)
