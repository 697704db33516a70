"""`CandidatePool`: what the retrievers returned for one query, before fusion.

Example:
    >>> import numpy as np
    >>> pool = CandidatePool(keys=["id:a"], names=["dense"], raw=np.array([[0.5]]),
    ...     found_rank=np.array([[1]]), has_scores=np.array([True]), _docs=[None],
    ...     _loaders=[None])
    >>> len(pool)
    1

"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.documents import Document
from numpy.typing import NDArray

__all__ = ["CandidatePool"]


@dataclass
class CandidatePool:
    """Everything the retrievers returned for one query, before fusion.

    A pool is what tuning caches: re-fusing it with another ``alpha``, method or
    normalization costs microseconds, no retrieval.

    Attributes:
        keys: Identity of each candidate (``Document.id``, a metadata key, or a content hash).
        names: Retriever names, one per row.
        raw: Raw scores, shape ``(n_retrievers, n_candidates)``; NaN = no score.
        found_rank: Rank of each candidate in each retriever's own list (1 = best,
            0 = not in that list).
        has_scores: Per retriever, whether it returns scores (False = rank only).
        feedback: Ids of the documents the query was expanded with (``feedback_docs``), in
            first-round order; empty without feedback.
        notes: Per retriever, how it rewrote the query (e.g. synonym expansion); empty when
            none did.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_fusion import FusionRetriever
        >>> retriever = FusionRetriever.from_texts(
        ...     ["error E-217: cells too cold", "warranty: ten years"],
        ...     DeterministicFakeEmbedding(size=8),
        ...     ids=["e217", "warranty"],
        ... )
        >>> pool = retriever.gather("E-217")
        >>> pool.names, len(pool)
        (['dense', 'bm25'], 2)
        >>> best = retriever.fuse_pool(pool, alpha=0.0).order[0]  # keyword only
        >>> pool.document(int(best)).id
        'e217'

    """

    keys: list[str]
    names: list[str]
    raw: NDArray[np.float64]
    found_rank: NDArray[np.int64]
    has_scores: NDArray[np.bool_]
    feedback: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    _docs: list[Document | None] = field(default_factory=list, repr=False)
    _loaders: list[Any] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.keys)

    def document(self, i: int) -> Document:
        """Return candidate ``i`` as a Document (loaded on first use).

        Raises:
            KeyError: The candidate was deleted from its index after the search.

        """
        doc = self._present(i)
        if doc is None:
            raise KeyError(
                f"candidate {self.keys[i]!r} was deleted from its index after the search"
            )
        return doc

    def _present(self, i: int) -> Document | None:
        """Candidate ``i``, or None when a concurrent delete removed it since the search."""
        if self._docs[i] is None:
            self._load([i])
        return self._docs[i]

    def _load(self, positions: Iterable[int]) -> None:
        """Load the not-yet-loaded candidates among ``positions``: one call per loader.

        A loader returns None for an id deleted since the search; that candidate stays None.
        """
        pending: dict[Any, list[int]] = {}  # loader -> positions (equal bound methods merge)
        for i in positions:
            if self._docs[i] is None and self._loaders[i] is not None:
                pending.setdefault(self._loaders[i], []).append(i)
        for loader, group in pending.items():
            ids = [k[3:] if k.startswith("id:") else k for k in (self.keys[i] for i in group)]
            for i, doc in zip(group, loader(ids), strict=True):
                self._docs[i] = doc

    def window(self, fetch_k: int, *, complete_scoring: bool = True) -> CandidatePool:
        """Return the pool as it would have been with a smaller ``fetch_k`` (for tuning).

        Candidates that no retriever ranked within ``fetch_k`` are dropped and ranks beyond
        ``fetch_k`` become "not found". With complete scoring the survivors keep every side's
        real score (a smaller gather would compute the same ones); without it, a score is kept
        only where that retriever still ranks the candidate.

        Example:
            >>> pool = CandidatePool(keys=["id:a", "id:b", "id:c"], names=["dense", "bm25"],
            ...     raw=np.array([[0.9, 0.8, 0.1], [np.nan, 2.0, 5.0]]),
            ...     found_rank=np.array([[1, 2, 3], [0, 2, 1]]),
            ...     has_scores=np.array([True, True]), _docs=[None] * 3, _loaders=[None] * 3)
            >>> small = pool.window(1)
            >>> small.keys, small.found_rank.tolist()
            (['id:a', 'id:c'], [[1, 0], [0, 1]])

        """
        if fetch_k >= int(self.found_rank.max(initial=0)):
            return self
        found = (self.found_rank > 0) & (self.found_rank <= fetch_k)
        keep = np.flatnonzero(found.any(axis=0))
        rank = np.where(found, self.found_rank, 0)[:, keep].astype(np.int64)
        raw = np.where(self.has_scores[:, None], self.raw[:, keep], np.nan)
        if not complete_scoring:
            raw = np.where(rank > 0, raw, np.nan)
        return CandidatePool(
            keys=[self.keys[i] for i in keep],
            names=self.names,
            raw=raw,
            found_rank=rank,
            has_scores=self.has_scores,
            feedback=self.feedback,
            notes=self.notes,
            _docs=[self._docs[i] for i in keep],
            _loaders=[self._loaders[i] for i in keep],
        )
