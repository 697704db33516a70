"""LangChain's standard retriever tests, run as unit tests (offline, fake embeddings)."""

from __future__ import annotations

from typing import Any

from langchain_tests.integration_tests import RetrieversIntegrationTests

from langchain_fusion import FusionRetriever
from tests.fakes import BagOfWordsEmbedding

TEXTS = [f"document number {i} about topic {i % 5} and example queries" for i in range(20)]


class BuiltFusionRetriever(FusionRetriever):
    """FusionRetriever whose constructor builds its own index (the suite calls cls(**params))."""

    def __init__(self, **kwargs: Any) -> None:
        built = FusionRetriever.from_texts(TEXTS, BagOfWordsEmbedding())
        super().__init__(sources=built.sources, names=built.names, index=built.index, **kwargs)


class TestFusionRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[FusionRetriever]:
        return BuiltFusionRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {}

    @property
    def retriever_query_example(self) -> str:
        return "example queries about topic 3"
