"""Lexical retrieval engine: tokenizer, BM25 scoring functions and the BM25 index (no LangChain).

Example:
    >>> from langchain_fusion.lexical import BM25Index
    >>> index = BM25Index()
    >>> _ = index.add(["hybrid search fuses dense and sparse", "keyword search with BM25"])
    >>> index.search("bm25 keywords", k=1)[0].tolist()
    [1]

"""

from __future__ import annotations

from langchain_fusion.lexical.bm25 import BM25Index
from langchain_fusion.lexical.scoring import METHODS
from langchain_fusion.lexical.stopwords import ENGLISH_STOPWORDS
from langchain_fusion.lexical.tokenizer import (
    DEFAULT_TOKEN_PATTERN,
    Encoding,
    TermEncoder,
    Tokenizer,
)

__all__ = [
    "BM25Index",
    "DEFAULT_TOKEN_PATTERN",
    "ENGLISH_STOPWORDS",
    "Encoding",
    "METHODS",
    "TermEncoder",
    "Tokenizer",
]
