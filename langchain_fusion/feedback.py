"""Pseudo-relevance feedback: expand a query with what the first fused results say.

Pure functions on arrays and token lists, no LangChain. `FusionRetriever(feedback_docs=m)` uses
them for a second retrieval round: the top ``m`` documents of the first fused ranking are
treated as relevant, and

* the dense query moves towards them (Rocchio): ``(1 - w) * q / |q| + w * mean(doc vectors)``;
* the BM25 query becomes an RM3-style term distribution: ``(1 - w) * P(t | query) +
  w * P(t | feedback)``, where ``P(t | feedback)`` averages ``tf / doc_len`` over the feedback
  documents and keeps its ``n_terms`` heaviest terms.

One weight ``w`` (``feedback_weight``) mixes both sides. Feedback from the *fused* list helps
more than each retriever's own feedback, because the fused top is more often relevant: on
NFCorpus (many relevant documents per query) it lifts nDCG@10 by about 0.01; on SciFact (about
one relevant document per query) it does not help, so it is off by default and `tune_feedback`
decides per collection (see ``docs/benchmarks.md``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from langchain_fusion.fusion.spec import check_feedback  # validation lives with the other settings

__all__ = ["check_feedback", "rm3_terms", "rocchio"]


def rocchio(query: ArrayLike, feedback: ArrayLike, weight: float) -> NDArray[np.float32]:
    """Move a query vector towards the mean of feedback vectors.

    Args:
        query: The query embedding, shape ``(dim,)`` (any length; it is normalized first).
        feedback: Feedback document vectors, shape ``(m, dim)`` (unit length, as stored).
        weight: Share of the feedback mean, in ``[0, 1]``; 0 returns the normalized query.

    Returns:
        ``(1 - weight) * q / |q| + weight * mean(feedback)`` as float32 (not normalized: cosine
        search normalizes it).

    Example:
        >>> rocchio([2.0, 0.0], [[0.0, 1.0], [0.0, 1.0]], 0.5).tolist()
        [0.5, 0.5]
        >>> rocchio([2.0, 0.0], [[0.0, 1.0]], 0.0).tolist()
        [1.0, 0.0]

    """
    q = np.asarray(query, dtype=np.float64)
    fb = np.asarray(feedback, dtype=np.float64)
    norm = float(np.linalg.norm(q))
    q = q / norm if norm > 0 else q
    if fb.size == 0 or weight == 0.0:
        return q.astype(np.float32)
    if fb.ndim != 2 or fb.shape[1] != q.shape[0]:
        raise ValueError(f"feedback vectors must have shape (m, {q.shape[0]}), got {fb.shape}")
    moved: NDArray[np.float32] = ((1.0 - weight) * q + weight * fb.mean(axis=0)).astype(np.float32)
    return moved


def rm3_terms(
    query: Sequence[str],
    feedback: Sequence[Sequence[str]],
    *,
    n_terms: int = 20,
    weight: float = 0.5,
    known: Callable[[str], bool] | None = None,
) -> dict[str, float]:
    """Return the expanded term weights of a query (RM3 with uniform feedback-doc weights).

    Args:
        query: The query's tokens (as the index tokenizes them; repeats count).
        feedback: Each feedback document's tokens.
        n_terms: Feedback terms kept (the heaviest ``P(t | feedback)``).
        weight: Share of the feedback distribution, in ``[0, 1]``.
        known: Keep only terms for which this returns True (e.g. terms in the index).

    Returns:
        ``{term: weight}``, weights summing to 1 (empty if no term is known).

    Example:
        >>> terms = rm3_terms(["solar"], [["solar", "panel"], ["solar", "roof"]], n_terms=2)
        >>> {t: round(w, 3) for t, w in terms.items()}
        {'solar': 0.833, 'panel': 0.167}

    """
    keep = known if known is not None else (lambda _t: True)
    q = Counter(t for t in query if keep(t))
    out: dict[str, float] = {}
    q_total = sum(q.values())
    if q_total:
        for t, n in q.items():
            out[t] = (1.0 - weight) * n / q_total
    fb: dict[str, float] = {}
    docs = [d for d in feedback if d]
    for tokens in docs:
        length = len(tokens)
        for t, n in Counter(tokens).items():
            if keep(t):
                fb[t] = fb.get(t, 0.0) + n / length / len(docs)
    top = sorted(fb.items(), key=lambda item: (-item[1], item[0]))[:n_terms]
    total = sum(v for _, v in top)
    if total > 0:
        share = weight if q_total else 1.0
        for t, v in top:
            out[t] = out.get(t, 0.0) + share * v / total
    return out
