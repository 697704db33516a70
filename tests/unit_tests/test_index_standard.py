"""LangChain's standard VectorStore test suite, run against HybridIndex."""

from __future__ import annotations

import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests.vectorstores import VectorStoreIntegrationTests

from langchain_fusion.index import HybridIndex


class TestHybridIndexStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self) -> VectorStore:
        """An empty index with the suite's deterministic fake embedding."""
        return HybridIndex(self.get_embeddings())
