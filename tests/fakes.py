"""Test doubles shared by the test suite: meaningful offline embeddings and scripted sources."""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import Field

from langchain_fusion.sources import Candidates, Source


class BagOfWordsEmbedding(Embeddings):
    """Hashing bag-of-words vectors: texts sharing words are close. Deterministic and fast."""

    def __init__(self, size: int = 64) -> None:
        self.size = size

    def _vec(self, text: str) -> list[float]:
        v = np.zeros(self.size)
        for word in re.findall(r"\w+", text.lower()):
            h = int(hashlib.md5(word.encode()).hexdigest(), 16)
            v[h % self.size] += 1.0 if (h >> 64) % 2 else -1.0
        if not v.any():
            v[0] = 1.0
        return (v / np.linalg.norm(v)).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)


class ScriptedSource(Source):
    """Returns a fixed ranked list with scores; optionally sleeps to test concurrency."""

    kind = "scripted"

    def __init__(
        self,
        docs: list[Document],
        scores: list[float] | None,
        *,
        delay: float = 0.0,
        all_scores: dict[str, float] | None = None,
        supports_filter: bool = False,
    ) -> None:
        self.docs = docs
        self.scores = scores
        self.delay = delay
        self.all_scores = all_scores
        self.supports_filter = supports_filter
        self.calls: list[dict[str, Any]] = []

    def search(self, query: str, k: int, *, filter: Any = None) -> Candidates:
        self.calls.append({"query": query, "k": k, "filter": filter})
        if self.delay:
            time.sleep(self.delay)
        scorer = None
        if self.all_scores is not None:
            table = self.all_scores

            def scorer(docs: Any) -> np.ndarray:
                return np.array([table.get(d.page_content, np.nan) for d in docs], dtype=float)

        return Candidates(
            documents=self.docs[:k],
            scores=None if self.scores is None else np.array(self.scores[:k], dtype=float),
            scorer=scorer,
        )


class FixedRetriever(BaseRetriever):
    """Returns fixed documents and records the queries it received."""

    docs: list[Document]
    queries: list[str] = Field(default_factory=list)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        self.queries.append(query)
        return list(self.docs)


class LookupEmbedding(Embeddings):
    """Maps each known text to a fixed vector; unknown texts to a deterministic random one."""

    def __init__(self, table: dict[str, list[float]], size: int) -> None:
        self.table = table
        self.fallback = DeterministicFakeEmbedding(size=size)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.table.get(text) or self.fallback.embed_query(text)


WORDS = [
    "battery",
    "charge",
    "winter",
    "cold",
    "heat",
    "pump",
    "solar",
    "panel",
    "roof",
    "inverter",
    "grid",
    "export",
    "limit",
    "firmware",
    "update",
    "vent",
    "filter",
    "clean",
    "warranty",
    "claim",
    "repair",
    "error",
    "code",
    "screen",
    "reset",
    "button",
    "cable",
    "fuse",
]


def word_corpus(n: int = 50, seed: int = 0) -> list[Document]:
    """Word documents of very different lengths with repeated words (BM25's k1 and b matter)."""
    rng = np.random.default_rng(seed)
    return [
        Document(" ".join(rng.choice(WORDS[: 8 + i % 20], size=4 + (i * 7) % 40)), id=f"d{i}")
        for i in range(n)
    ]


def word_queries(docs: list[Document]) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """25 queries of three words from one document each, judged relevant to that document."""
    rng = np.random.default_rng(1)
    queries, qrels = {}, {}
    for q in range(25):
        target = int(rng.integers(len(docs)))
        words = docs[target].page_content.split()
        queries[f"q{q}"] = " ".join(rng.choice(words, size=min(3, len(words)), replace=False))
        qrels[f"q{q}"] = {f"d{target}": 1}
    return queries, qrels
