"""langchain-fusion: hybrid dense + BM25 retrieval for LangChain.

`FusionRetriever` runs a vector search and a keyword search and fuses them, by normalized scores
(``alpha * vector + (1 - alpha) * keyword``) or by weighted Reciprocal Rank Fusion.

Example:
    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> from langchain_fusion import FusionRetriever
    >>> retriever = FusionRetriever.from_texts(
    ...     ["pandas.read_csv loads a CSV file", "plotting with matplotlib"],
    ...     embedding=DeterministicFakeEmbedding(size=16),
    ...     k=1,
    ... )
    >>> retriever.invoke("read_csv")[0].page_content
    'pandas.read_csv loads a CSV file'

"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from langchain_fusion.bm25_retriever import BM25Retriever
from langchain_fusion.dense import DenseIndex, LocalEmbeddings, default_embeddings
from langchain_fusion.index import HybridIndex
from langchain_fusion.lexical import BM25Index, Tokenizer
from langchain_fusion.retriever import (
    CandidatePool,
    FusionMethod,
    FusionRetriever,
    Normalization,
)
from langchain_fusion.sources import Candidates, CommunitySunsetWarning, Source

if TYPE_CHECKING:
    from langchain_fusion.multi_query import MultiQueryFusionRetriever
    from langchain_fusion.synonyms import SynonymKeywordSource
    from langchain_fusion.tfidf import TfidfSource

# Query-side options load on first use (prompts, scipy): the CLI's cold start skips them.
_LAZY = {
    "MultiQueryFusionRetriever": "langchain_fusion.multi_query",
    "SynonymKeywordSource": "langchain_fusion.synonyms",
    "TfidfSource": "langchain_fusion.tfidf",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'langchain_fusion' has no attribute {name!r}")


try:
    __version__ = version("langchain-fusion")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "BM25Index",
    "BM25Retriever",
    "CandidatePool",
    "Candidates",
    "CommunitySunsetWarning",
    "DenseIndex",
    "FusionMethod",
    "FusionRetriever",
    "HybridIndex",
    "LocalEmbeddings",
    "MultiQueryFusionRetriever",
    "Normalization",
    "Source",
    "SynonymKeywordSource",
    "TfidfSource",
    "Tokenizer",
    "__version__",
    "default_embeddings",
]
