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

from importlib.metadata import PackageNotFoundError, version

from langchain_fusion.bm25_retriever import BM25Retriever
from langchain_fusion.dense import DenseIndex, LocalEmbeddings, default_embeddings
from langchain_fusion.index import HybridIndex
from langchain_fusion.lexical import BM25Index, Tokenizer
from langchain_fusion.multi_query import MultiQueryFusionRetriever
from langchain_fusion.retriever import (
    CandidatePool,
    FusionMethod,
    FusionRetriever,
    Normalization,
)
from langchain_fusion.sources import Candidates, CommunitySunsetWarning, Source
from langchain_fusion.synonyms import SynonymKeywordSource
from langchain_fusion.tfidf import TfidfSource

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
