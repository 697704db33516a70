"""The storage of `BM25Index`: buffers, immutable segments of postings, atomic file writes.

A segment holds the documents of one ``add`` (or of a merge): term-major postings (CSC: for each
term, the documents containing it, ascending, with their counts) for scoring, and doc-major term
ids (CSR) to update document frequencies when documents are removed. See
:mod:`langchain_fusion.lexical.bm25` for how the index uses them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "atomic_write",
    "Buffer",
    "build_segment",
    "empty_result",
    "Encoded",
    "ranges",
    "Segment",
    "segment_from_encoded",
    "segment_from_postings",
]

_EMPTY_SLOTS: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
_EMPTY_SCORES: NDArray[np.float64] = np.zeros(0, dtype=np.float64)


def empty_result() -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    return _EMPTY_SLOTS.copy(), _EMPTY_SCORES.copy()


def ranges(starts: NDArray[np.int64], ends: NDArray[np.int64]) -> NDArray[np.int64]:
    """Concatenate ``arange(s, e)`` for every pair, vectorised."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total, dtype=np.int64)


class Buffer:
    """A 1-D numpy array that grows by amortised doubling (append-only)."""

    def __init__(self, data: NDArray[Any]) -> None:
        self._data = data
        self._size = len(data)

    @property
    def view(self) -> NDArray[Any]:
        return self._data[: self._size]

    def extend(self, values: NDArray[Any]) -> None:
        need = self._size + len(values)
        if need > len(self._data) or not self._data.flags.writeable:
            capacity = max(need, 2 * len(self._data), 16)
            grown = np.zeros(capacity, dtype=self._data.dtype)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : need] = values
        self._size = need

    def replace(self, data: NDArray[Any]) -> None:
        self._data = data
        self._size = len(data)

    def reserve(self, capacity: int) -> None:
        """Make room for ``capacity`` values in total (one allocation, no doubling)."""
        if capacity > len(self._data):
            grown = np.zeros(capacity, dtype=self._data.dtype)
            grown[: self._size] = self._data[: self._size]
            self._data = grown


@dataclass(frozen=True)
class Segment:
    """Postings of the documents in slots ``[start, start + n_docs)``."""

    start: int
    n_docs: int
    term_ptr: NDArray[np.int64]  # (n_terms + 1,) postings of term t: [term_ptr[t], term_ptr[t+1])
    post_docs: NDArray[np.int32]  # local document offsets, ascending within a term
    post_tfs: NDArray[np.int32]  # term counts
    doc_ptr: NDArray[np.int64]  # (n_docs + 1,) terms of document d: [doc_ptr[d], doc_ptr[d+1])
    doc_terms: NDArray[np.int32]  # distinct term ids per document

    @property
    def n_terms(self) -> int:
        return len(self.term_ptr) - 1

    @property
    def stop(self) -> int:
        return self.start + self.n_docs

    def postings_terms(self) -> NDArray[np.int64]:
        """Return the term id of every posting."""
        counts = np.diff(self.term_ptr)
        return np.repeat(np.arange(self.n_terms, dtype=np.int64), counts)


def build_segment(
    start: int, n_docs: int, terms: NDArray[np.int64], docs: NDArray[np.int64], n_terms: int
) -> Segment:
    """Build a segment from (term, local doc) pairs, one pair per token occurrence."""
    if len(terms):
        key = terms * max(n_docs, 1) + docs
        uniq, tfs = np.unique(key, return_counts=True)
        p_terms = uniq // max(n_docs, 1)
        p_docs = uniq - p_terms * max(n_docs, 1)
    else:
        p_terms = p_docs = tfs = np.zeros(0, dtype=np.int64)
    return segment_from_postings(start, n_docs, p_terms, p_docs, tfs, n_terms)


def segment_from_postings(
    start: int,
    n_docs: int,
    p_terms: NDArray[np.int64],
    p_docs: NDArray[np.int64],
    p_tfs: NDArray[Any],
    n_terms: int,
) -> Segment:
    """Build a segment from postings already sorted by (term, doc)."""
    term_ptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(np.bincount(p_terms, minlength=n_terms), out=term_ptr[1:])
    doc_ptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(np.bincount(p_docs, minlength=n_docs), out=doc_ptr[1:])
    by_doc = np.argsort(p_docs, kind="stable")
    return Segment(
        start=start,
        n_docs=n_docs,
        term_ptr=term_ptr,
        post_docs=p_docs.astype(np.int32),
        post_tfs=p_tfs.astype(np.int32),
        doc_ptr=doc_ptr,
        doc_terms=p_terms[by_doc].astype(np.int32),
    )


class Encoded:
    """The postings of one :meth:`BM25Index.add` call, appended chunk after chunk.

    Postings are over call-local term ids, sorted by (term, document) within each chunk, in
    three flat int32 arrays: a few large allocations (sized from the first chunk) rather than
    many small ones, so that their memory goes back to the system when the call ends.
    """

    def __init__(self, n_docs: int) -> None:
        self.n_docs = n_docs
        self.lids = Buffer(np.zeros(0, dtype=np.int32))  # call-local term id of each posting
        self.docs = Buffer(np.zeros(0, dtype=np.int32))  # call-local document of each posting
        self.tfs = Buffer(np.zeros(0, dtype=np.int32))  # term counts
        self.lengths = np.zeros(n_docs, dtype=np.int32)  # kept tokens per document
        self.bounds: list[tuple[int, int]] = [(0, 0)]  # (postings, documents) after each chunk

    def append(
        self,
        lids: NDArray[np.int64],
        docs: NDArray[np.int64],
        tfs: NDArray[np.int64],
        lengths: NDArray[np.int64],
    ) -> None:
        """Append a chunk's postings (``docs`` local to the chunk) and document lengths."""
        n_post, n_done = self.bounds[-1]
        if len(self.bounds) == 1 and len(lengths) < self.n_docs:
            # Reserve for the whole call, extrapolated from the first chunk (+25%).
            estimate = int(len(lids) / max(len(lengths), 1) * self.n_docs * 1.25) + 16
            for buffer in (self.lids, self.docs, self.tfs):
                buffer.reserve(estimate)
        self.lids.extend(lids.astype(np.int32))
        self.docs.extend((docs + n_done).astype(np.int32))
        self.tfs.extend(tfs.astype(np.int32))
        self.lengths[n_done : n_done + len(lengths)] = lengths
        self.bounds.append((n_post + len(lids), n_done + len(lengths)))


def segment_from_encoded(
    start: int, enc: Encoded, to_global: NDArray[np.int64], n_terms: int
) -> Segment:
    """Assemble an add call's postings into one segment, equal to :func:`build_segment`'s.

    A counting sort: each term's postings are written at its cursor, chunk after chunk (chunks
    hold consecutive documents), so the documents of a term stay ascending without sorting all
    postings at once; temporaries are one chunk's.
    """
    n_docs = enc.n_docs
    lids_all, docs_all, tfs_all = enc.lids.view, enc.docs.view, enc.tfs.view
    chunks = list(zip(enc.bounds, enc.bounds[1:]))
    n_local = len(to_global)
    local_counts = np.zeros(n_local, dtype=np.int64)
    for (p0, _), (p1, _) in chunks:
        local_counts += np.bincount(lids_all[p0:p1], minlength=n_local)
    counts = np.zeros(n_terms, dtype=np.int64)
    counts[to_global] = local_counts
    term_ptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(counts, out=term_ptr[1:])
    n_post = int(term_ptr[-1])
    post_docs = np.empty(n_post, dtype=np.int32)
    post_tfs = np.empty(n_post, dtype=np.int32)
    doc_terms = np.empty(n_post, dtype=np.int32)
    doc_ptr = np.zeros(n_docs + 1, dtype=np.int64)
    cursor = term_ptr[:-1][to_global]  # next free position of each call-local term
    for (p0, d0), (p1, d1) in chunks:
        m = p1 - p0
        if m == 0:
            continue
        lids, docs = lids_all[p0:p1], docs_all[p0:p1]
        run_starts = np.flatnonzero(np.concatenate(([True], lids[1:] != lids[:-1])))
        run_lens = np.diff(np.append(run_starts, m))
        run_lids = lids[run_starts]
        where = np.repeat(cursor[run_lids] - run_starts, run_lens)
        where += np.arange(m, dtype=np.int64)
        post_docs[where] = docs
        post_tfs[where] = tfs_all[p0:p1]
        cursor[run_lids] += run_lens
        terms = to_global[lids]
        doc_terms[p0:p1] = terms[np.lexsort((terms, docs))]
        doc_ptr[d0 + 1 : d1 + 1] = np.bincount(docs - d0, minlength=d1 - d0)
    np.cumsum(doc_ptr, out=doc_ptr)
    return Segment(
        start=start,
        n_docs=n_docs,
        term_ptr=term_ptr,
        post_docs=post_docs,
        post_tfs=post_tfs,
        doc_ptr=doc_ptr,
        doc_terms=doc_terms,
    )


def atomic_write(target: Path, write: Any) -> None:
    """Write ``target`` through a temporary file beside it, replaced in one step."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
