"""A fast, exactly-updatable BM25 index over numpy arrays.

Documents live in *slots* ``0, 1, 2, ...``: :meth:`BM25Index.add` appends slots, and
:meth:`BM25Index.remove` tombstones them, so the index stays aligned slot for slot with the dense
index beside it. :meth:`BM25Index.compact` renumbers the survivors when you want the space back.

Storage keeps raw term frequencies, never precomputed scores, so the collection statistics that
BM25 depends on -- the number of live documents ``N``, each term's document frequency and the
average document length -- are maintained exactly under add/remove, and the idf is computed at
query time. An index that saw any sequence of adds and removes scores every document exactly like
an index built from scratch on the surviving texts.

Layout: documents are grouped in *segments* (one per :meth:`~BM25Index.add` call, merged
log-structured style so that there are O(log n) of them). A segment stores term-major postings
(CSC: for each term, the documents containing it, ascending, and the counts) for scoring, and
doc-major term ids (CSR) to update document frequencies on removal. A query gathers the postings
of its terms from every segment, computes the BM25 contributions in one vectorised pass, sums them
per document (a scatter-add into a reusable buffer: the cost follows the number of postings read,
not the collection size) and selects the top ``k`` with a partial sort.

Scores agree with bm25s (Lucene variant by default; see :mod:`langchain_fusion.lexical.scoring`).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from langchain_fusion.feedback import rm3_terms
from langchain_fusion.lexical._storage import (
    Buffer,
    Encoded,
    Segment,
    atomic_write,
    build_segment,
    empty_result,
    ranges,
    segment_from_encoded,
    segment_from_postings,
)
from langchain_fusion.lexical.scoring import (
    idf,
    tf_component,
    validate_params,
    zero_tf_component,
)
from langchain_fusion.lexical.tokenizer import TermEncoder, Tokenizer

__all__ = ["BM25Index"]

_FORMAT = "langchain-fusion/bm25-index"
_VERSION = 1
_META_FILE = "bm25.json"
_ARRAYS = ("doc_len", "live", "df", "term_ptr", "post_docs", "post_tfs", "doc_ptr", "doc_terms")
# Texts tokenized and encoded at a time by BM25Index.add: bounds the memory held by raw tokens.
_ADD_CHUNK = 20_000
# With fewer than n_slots / _DENSE_RATIO postings to sum, accumulate into a persistent scratch
# buffer (O(postings)); with more, np.bincount over all slots is faster.
_DENSE_RATIO = 4


class BM25Index:
    """BM25 over slots, with exact incremental add/remove, masks, and mmap-able persistence.

    Args:
        tokenizer: Turns texts and queries into terms; default :class:`Tokenizer` ``()``
            (lowercase, English stopwords, Snowball English stemming).
        k1: Term-frequency saturation, ``>= 0``.
        b: Length normalization, in ``[0, 1]``.
        method: BM25 variant, one of ``"lucene"`` (default), ``"robertson"``, ``"atire"``,
            ``"bm25l"``, ``"bm25+"`` (definitions in :mod:`langchain_fusion.lexical.scoring`).
        delta: The BM25L / BM25+ shift, ``>= 0`` (ignored by the other variants).

    Thread-safe: a lock serialises searches and updates (tokenizing new documents, the slow part
    of :meth:`add`, happens outside it).

    Example:
        >>> index = BM25Index()
        >>> index.add(["The cat sat on the mat", "Dogs chase cats", "Birds sing"]).tolist()
        [0, 1, 2]
        >>> slots, scores = index.search("cat", k=5)
        >>> slots.tolist(), scores.round(3).tolist()
        ([0, 1], [0.178, 0.178])
        >>> index.remove([0])
        >>> index.search("cats", k=5)[0].tolist(), index.n_live, index.n_slots
        ([1], 2, 3)

    """

    def __init__(
        self,
        tokenizer: Tokenizer | None = None,
        *,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
        delta: float = 0.5,
    ) -> None:
        if tokenizer is None:
            tokenizer = Tokenizer()
        elif not isinstance(tokenizer, Tokenizer):
            raise TypeError(
                f"tokenizer must be a langchain_fusion Tokenizer or None, got "
                f"{type(tokenizer).__name__}"
            )
        validate_params(k1=k1, b=b, method=method, delta=delta)
        self._tokenizer = tokenizer
        self._k1 = float(k1)
        self._b = float(b)
        self._method = method
        self._delta = float(delta)

        self._vocab: dict[str, int] = {}
        self._terms: list[str] = []
        self._df = Buffer(np.zeros(0, dtype=np.int64))
        self._doc_len = Buffer(np.zeros(0, dtype=np.int32))
        self._live = Buffer(np.zeros(0, dtype=np.bool_))
        self._segments: list[Segment] = []
        self._n_live = 0
        self._total_len = 0
        self._lock = threading.RLock()
        self._scratch: NDArray[np.float64] | None = None

    # ------------------------------------------------------------------ properties

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer used for documents and queries."""
        return self._tokenizer

    @property
    def k1(self) -> float:
        """Term-frequency saturation parameter."""
        return self._k1

    @property
    def b(self) -> float:
        """Length normalization parameter."""
        return self._b

    @property
    def method(self) -> str:
        """The BM25 variant."""
        return self._method

    @property
    def delta(self) -> float:
        """The BM25L / BM25+ shift."""
        return self._delta

    @property
    def n_slots(self) -> int:
        """Number of slots ever assigned, including removed ones."""
        return len(self._doc_len.view)

    @property
    def n_live(self) -> int:
        """Number of live (not removed) documents."""
        return self._n_live

    @property
    def live_mask(self) -> NDArray[np.bool_]:
        """Read-only boolean array over slots, True for live documents."""
        view: NDArray[np.bool_] = self._live.view.view()
        view.flags.writeable = False
        return view

    @property
    def n_terms(self) -> int:
        """Number of distinct terms occurring in live documents."""
        return int(np.count_nonzero(self._df.view))

    @property
    def avg_doc_len(self) -> float:
        """Mean number of terms per live document (0.0 when empty)."""
        return self._total_len / self._n_live if self._n_live else 0.0

    def set_params(self, *, k1: float | None = None, b: float | None = None) -> None:
        """Change ``k1`` and/or ``b`` in place; ``None`` keeps the current value.

        Both enter the score only at query time, so nothing is rebuilt: the next search scores
        as an index built with the new values would (tuning them costs one search pass each).

        Raises:
            ValueError: ``k1 < 0`` or ``b`` outside ``[0, 1]``.
            TypeError: A value that is not a number.

        Example:
            >>> index = BM25Index(k1=1.5)
            >>> _ = index.add(["apple apple apple pie", "apple crumble recipe with pears"])
            >>> before = index.score("apple", [0, 1])
            >>> index.set_params(k1=0.5)
            >>> index.k1, index.b, bool((index.score("apple", [0, 1]) != before).all())
            (0.5, 0.75, True)

        """
        new_k1 = self._k1 if k1 is None else k1
        new_b = self._b if b is None else b
        validate_params(k1=new_k1, b=new_b, method=self._method, delta=self._delta)
        with self._lock:
            self._k1, self._b = float(new_k1), float(new_b)

    def doc_freq(self, term: str) -> int:
        """Return the number of live documents containing ``term`` (an already-tokenized term).

        Example:
            >>> index = BM25Index()
            >>> _ = index.add(["red apples", "green apple", "pears"])
            >>> index.doc_freq("appl"), index.doc_freq("kiwi")
            (2, 0)

        """
        tid = self._vocab.get(term)
        return 0 if tid is None else int(self._df.view[tid])

    def __len__(self) -> int:
        return self._n_live

    def __repr__(self) -> str:
        return (
            f"BM25Index(n_live={self._n_live}, n_slots={self.n_slots}, n_terms={self.n_terms}, "
            f"method={self._method!r}, k1={self._k1}, b={self._b})"
        )

    # ------------------------------------------------------------------ writing

    def add(self, texts: Sequence[str], *, show_progress: bool = False) -> NDArray[np.int64]:
        """Index texts in new slots, appended after the existing ones.

        Texts are tokenized and encoded ``_ADD_CHUNK`` at a time into compact postings, so the
        raw tokens of only one chunk are in memory at once; the index itself changes in one
        step at the end (all or nothing).

        Args:
            texts: The documents. Empty strings are allowed (a document without terms).
            show_progress: Show a tqdm progress bar while tokenizing.

        Returns:
            The new slots, consecutive: ``arange(n_slots_before, n_slots_before + len(texts))``.

        Raises:
            TypeError: ``texts`` is a single str, or an item is not a str (the message gives its
                index). Nothing is added in that case.

        Example:
            >>> index = BM25Index()
            >>> index.add(["a first text", "a second"]).tolist(), index.add([""]).tolist()
            ([0, 1], [2])

        """
        if isinstance(texts, (str, bytes)) or not isinstance(texts, Iterable):
            raise TypeError(
                f"texts must be a sequence of str, got {type(texts).__name__}"
                + (" (wrap a single text in a list)" if isinstance(texts, str) else "")
            )
        texts = list(texts)
        n = len(texts)
        encoder = TermEncoder(self._tokenizer)  # term ids local to this call
        encoded = Encoded(n)
        bar: Any = None
        if show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, desc="BM25 tokenize", unit="doc")
        try:
            for start in range(0, n, _ADD_CHUNK):
                chunk = texts[start : start + _ADD_CHUNK]
                encoded.append(*encoder.encode(chunk, offset=start))
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
        with self._lock:
            # Under the lock: new term ids are numbered from the current vocabulary size.
            return self._add_encoded(encoded, list(encoder.vocabulary))

    def _add_encoded(self, encoded: Encoded, local_terms: list[str]) -> NDArray[np.int64]:
        """Append the postings of one add call as one segment (caller holds the lock)."""
        n = encoded.n_docs
        start = self.n_slots
        slots = np.arange(start, start + n, dtype=np.int64)
        if n == 0:
            return slots
        vocab = self._vocab
        first = len(self._terms)
        new_terms: list[str] = []
        to_global = np.empty(len(local_terms), dtype=np.int64)
        for i, term in enumerate(local_terms):
            tid = vocab.get(term)
            if tid is None:
                tid = first + len(new_terms)
                new_terms.append(term)
            to_global[i] = tid
        n_terms = first + len(new_terms)
        lengths = encoded.lengths
        segment = segment_from_encoded(start, encoded, to_global, n_terms)
        # Nothing has changed so far; now update everything.
        if new_terms:
            self._vocab.update(zip(new_terms, range(first, n_terms), strict=True))
            self._terms.extend(new_terms)
            self._df.extend(np.zeros(len(new_terms), dtype=np.int64))
        df = self._df.view
        df += np.diff(segment.term_ptr)
        self._doc_len.extend(lengths)
        self._live.extend(np.ones(n, dtype=np.bool_))
        self._n_live += n
        self._total_len += int(lengths.sum(dtype=np.int64))
        self._segments.append(segment)
        self._maybe_merge()
        return slots

    def _maybe_merge(self) -> None:
        """Merge trailing segments of similar size (log-structured: O(log n) segments)."""
        segs = self._segments
        while len(segs) >= 2 and segs[-2].n_docs <= 2 * segs[-1].n_docs:
            merged = self._merge(segs[-2:])
            segs[-2:] = [merged]

    def _merge(self, segments: Sequence[Segment]) -> Segment:
        """One segment with the postings of ``segments`` (adjacent), minus removed documents."""
        start = segments[0].start
        n_docs = segments[-1].stop - start
        live = self._live.view
        terms_parts, docs_parts, tfs_parts = [], [], []
        for seg in segments:
            p_terms = seg.postings_terms()
            p_docs = seg.post_docs.astype(np.int64) + (seg.start - start)
            keep = live[p_docs + start]
            terms_parts.append(p_terms[keep])
            docs_parts.append(p_docs[keep])
            tfs_parts.append(seg.post_tfs[keep])
        p_terms = np.concatenate(terms_parts)
        order = np.argsort(p_terms, kind="stable")  # runs are already sorted by (term, doc)
        return segment_from_postings(
            start,
            n_docs,
            p_terms[order],
            np.concatenate(docs_parts)[order],
            np.concatenate(tfs_parts)[order],
            len(self._terms),
        )

    def remove(self, slots: ArrayLike) -> None:
        """Remove documents (tombstone their slots); statistics update exactly.

        Args:
            slots: Slots to remove; duplicates are ignored.

        Raises:
            KeyError: A slot was never assigned or is already removed; nothing is removed then.
            TypeError: ``slots`` are not integers.

        Example:
            >>> index = BM25Index()
            >>> _ = index.add(["apple pie", "apple tart", "cherry pie"])
            >>> index.remove([1])
            >>> index.doc_freq("appl"), index.n_live
            (1, 2)
            >>> index.remove([1])
            Traceback (most recent call last):
            ...
            KeyError: 'slot 1 is already removed'

        """
        with self._lock:
            idx = self._check_slots(slots, "slots")
            idx = np.unique(idx)
            if len(idx) == 0:
                return
            df = self._df.view
            for seg in self._segments:
                lo, hi = np.searchsorted(idx, [seg.start, seg.stop])
                if lo == hi:
                    continue
                local = idx[lo:hi] - seg.start
                pos = ranges(seg.doc_ptr[local], seg.doc_ptr[local + 1])
                gone = seg.doc_terms[pos]
                if len(gone) > len(df) // 8:
                    df -= np.bincount(gone, minlength=len(df))
                else:
                    np.subtract.at(df, gone, 1)
            self._live.view[idx] = False
            self._n_live -= len(idx)
            self._total_len -= int(self._doc_len.view[idx].sum(dtype=np.int64))

    def _check_slots(self, slots: ArrayLike, name: str) -> NDArray[np.int64]:
        arr = np.asarray(slots)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array of slots, got shape {arr.shape}")
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
        idx = arr.astype(np.int64)
        n = self.n_slots
        bad = (idx < 0) | (idx >= n)
        if bad.any():
            raise KeyError(f"slot {int(idx[bad][0])} does not exist (n_slots={n})")
        dead = ~self._live.view[idx]
        if dead.any():
            raise KeyError(f"slot {int(idx[dead][0])} is already removed")
        return idx

    def compact(self) -> NDArray[np.int64]:
        """Drop removed slots, renumbering the live ones ``0..n_live-1`` in their order.

        Also forgets terms that no live document contains.

        Returns:
            ``mapping`` of length ``n_slots`` (before compaction): ``mapping[old] = new``, or -1
            for a removed slot.

        Example:
            >>> index = BM25Index()
            >>> _ = index.add(["one", "two", "three"])
            >>> index.remove([1])
            >>> index.compact().tolist(), index.n_slots
            ([0, -1, 1], 2)

        """
        with self._lock:
            live = self._live.view
            mapping = np.where(live, np.cumsum(live) - 1, -1).astype(np.int64)
            df = self._df.view
            kept_terms = df > 0
            term_map = np.where(kept_terms, np.cumsum(kept_terms) - 1, -1).astype(np.int64)
            n_live = self._n_live
            if self._segments:
                merged = self._merge(self._segments)
                p_terms = term_map[merged.postings_terms()]
                p_docs = mapping[merged.post_docs.astype(np.int64) + merged.start]
                segment = segment_from_postings(
                    0, n_live, p_terms, p_docs, merged.post_tfs, int(kept_terms.sum())
                )
                self._segments = [segment] if n_live else []
            self._terms = [
                t for t, keep in zip(self._terms, kept_terms.tolist(), strict=True) if keep
            ]
            self._vocab = {t: i for i, t in enumerate(self._terms)}
            self._df.replace(df[kept_terms].copy())
            self._doc_len.replace(self._doc_len.view[live].copy())
            self._live.replace(np.ones(n_live, dtype=np.bool_))
            return mapping

    # ------------------------------------------------------------------ reading

    def _query_terms(
        self, terms: Mapping[str, float]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Known term ids of a ``{term: weight}`` query and their positive weights."""
        vocab = self._vocab
        df = self._df.view
        pairs: dict[int, float] = {}
        for term, weight in terms.items():
            tid = vocab.get(term)
            if tid is not None and df[tid] > 0 and weight > 0:
                pairs[tid] = pairs.get(tid, 0.0) + float(weight)
        ids = np.fromiter(pairs.keys(), dtype=np.int64, count=len(pairs))
        qtf = np.fromiter(pairs.values(), dtype=np.float64, count=len(pairs))
        return ids, qtf

    def _parse_query(self, query: str | Mapping[str, float]) -> Mapping[str, float]:
        """``{term: weight}`` of a query: a text's term counts, or a checked mapping."""
        if isinstance(query, str):
            return Counter(self._tokenizer(query))
        if not isinstance(query, Mapping):
            raise TypeError(
                f"query must be a str or a {{term: weight}} mapping, got {type(query).__name__}"
            )
        for term, weight in query.items():
            if not isinstance(term, str):
                raise TypeError(f"query terms must be str, got {type(term).__name__} {term!r}")
            w = float(weight)
            if not np.isfinite(w) or w < 0:
                raise ValueError(f"query term weights must be finite and >= 0, got {term!r}: {w}")
        return query

    def _term_weights(
        self, ids: NDArray[np.int64], qtf: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], float]:
        """Per-term weight ``qtf * idf`` and the BM25L/BM25+ baseline of a matching document."""
        weights = qtf * idf(self._df.view[ids], self._n_live, self._method)
        zero = zero_tf_component(k1=self._k1, method=self._method, delta=self._delta)
        return weights, float(weights.sum() * zero)

    def _contributions(
        self, slots: NDArray[np.int64], tfs: NDArray[Any], weights: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """BM25 contribution of each posting, minus the tf=0 baseline (0 for most variants)."""
        tfc = tf_component(
            tfs,
            self._doc_len.view[slots],
            self.avg_doc_len,
            k1=self._k1,
            b=self._b,
            method=self._method,
            delta=self._delta,
        )
        zero = zero_tf_component(k1=self._k1, method=self._method, delta=self._delta)
        if zero:
            tfc -= zero
        return weights * tfc

    def _gather(
        self, ids: NDArray[np.int64], weights: NDArray[np.float64]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Slots and contributions of every posting of the query terms (slots may repeat)."""
        slot_parts: list[NDArray[np.int64]] = []
        tf_parts: list[NDArray[np.int32]] = []
        w_parts: list[NDArray[np.float64]] = []
        for seg in self._segments:
            valid = ids < seg.n_terms
            if not valid.any():
                continue
            seg_ids = ids[valid]
            starts = seg.term_ptr[seg_ids]
            ends = seg.term_ptr[seg_ids + 1]
            lengths = ends - starts
            if not lengths.any():
                continue
            if len(seg_ids) == 1:
                lo, hi = int(starts[0]), int(ends[0])
                docs = seg.post_docs[lo:hi]
                tfs = seg.post_tfs[lo:hi]
            else:
                pos = ranges(starts, ends)
                docs = seg.post_docs[pos]
                tfs = seg.post_tfs[pos]
            slot_parts.append(docs.astype(np.int64) + seg.start)
            tf_parts.append(tfs)
            w_parts.append(np.repeat(weights[valid], lengths))
        if not slot_parts:
            return empty_result()
        slots = np.concatenate(slot_parts) if len(slot_parts) > 1 else slot_parts[0]
        tfs_all = np.concatenate(tf_parts) if len(tf_parts) > 1 else tf_parts[0]
        w_all = np.concatenate(w_parts) if len(w_parts) > 1 else w_parts[0]
        return slots, self._contributions(slots, tfs_all, w_all)

    def _check_k(self, k: object) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        return int(k)

    def _check_mask(self, mask: object) -> NDArray[np.bool_] | None:
        if mask is None:
            return None
        arr = np.asarray(mask)
        if arr.dtype != np.bool_:
            raise TypeError(f"mask must be a boolean array, got dtype {arr.dtype}")
        if arr.shape != (self.n_slots,):
            raise ValueError(
                f"mask must have shape (n_slots,) = ({self.n_slots},), got {arr.shape}"
            )
        return arr

    def _search_tokens(
        self, terms: Mapping[str, float], k: int, mask: NDArray[np.bool_] | None
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        ids, qtf = self._query_terms(terms)
        if len(ids) == 0:
            return empty_result()
        weights, base = self._term_weights(ids, qtf)
        slots, values = self._gather(ids, weights)
        if len(slots) == 0:
            return empty_result()
        n = self.n_slots
        # Sum the contributions per slot, then read each posting's slot total back.
        if len(slots) * _DENSE_RATIO < n:
            # Few postings: scatter into a persistent zeroed buffer and clean up after, so the
            # cost is O(postings), not O(slots).
            scratch = self._scratch_buffer(n)
            np.add.at(scratch, slots, values)
            totals = scratch[slots]
            scratch[slots] = 0.0
        else:
            dense = np.bincount(slots, weights=values, minlength=n).astype(np.float64, copy=False)
            totals = dense[slots]
        keep = totals > 0
        keep &= self._live.view[slots]
        if mask is not None:
            keep &= mask[slots]
        if not keep.all():
            slots, totals = slots[keep], totals[keep]
        # A slot occurs at most once per query term, so the best k * n_terms postings hold at
        # least k distinct slots; keep every posting tied with the last of them, then dedupe.
        enough = k * len(ids)
        if len(totals) > enough:
            threshold = np.partition(totals, len(totals) - enough)[len(totals) - enough]
            top = totals >= threshold
            slots, totals = slots[top], totals[top]
        cand, first = np.unique(slots, return_index=True)
        acc = totals[first]
        order = np.lexsort((cand, -acc))[:k]
        scores = (acc[order] + base).astype(np.float64, copy=False)
        return cand[order], scores

    def _scratch_buffer(self, n: int) -> NDArray[np.float64]:
        """Return a zeroed float64 buffer of at least ``n`` entries (callers re-zero it)."""
        scratch = self._scratch
        if scratch is None or len(scratch) < n:
            scratch = np.zeros(max(n, 2 * (len(scratch) if scratch is not None else 0)))
            self._scratch = scratch
        return scratch

    def search(
        self, query: str | Mapping[str, float], k: int, *, mask: NDArray[np.bool_] | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Top-``k`` live documents for a query.

        Args:
            query: The query text, or ``{term: weight}`` over index terms (tokenized as the
                index tokenizes, e.g. from :meth:`expand`); a text counts each term once per
                occurrence, so ``"solar solar"`` is ``{"solar": 2}``.
            k: Maximum number of results, ``>= 1``.
            mask: Optional boolean array of shape ``(n_slots,)``; only True slots are returned.

        Returns:
            ``(slots, scores)``, best first (ties by slot), only documents with score > 0, at
            most ``k``. A query without known terms gives empty arrays.

        Raises:
            ValueError: ``k`` is not an int >= 1, or ``mask`` has the wrong shape.
            TypeError: ``query`` is not a str, or ``mask`` is not boolean.

        Example:
            >>> index = BM25Index()
            >>> _ = index.add(["solar power", "wind power", "solar panels on roofs"])
            >>> index.search("solar power", k=2)[0].tolist()
            [0, 1]
            >>> index.search("solar", k=5, mask=np.array([False, True, True]))[0].tolist()
            [2]
            >>> index.search("unknown words", k=3)[0].tolist()
            []

        """
        k = self._check_k(k)
        parsed = self._parse_query(query)
        with self._lock:
            return self._search_tokens(parsed, k, self._check_mask(mask))

    def search_many(
        self, queries: Sequence[str], k: int, *, mask: NDArray[np.bool_] | None = None
    ) -> list[tuple[NDArray[np.int64], NDArray[np.float64]]]:
        """:meth:`search` for several queries (same ``k`` and ``mask``).

        Example:
            >>> index = BM25Index()
            >>> _ = index.add(["red fox", "blue whale"])
            >>> [slots.tolist() for slots, _ in index.search_many(["fox", "whale", "owl"], k=1)]
            [[0], [1], []]

        """
        k = self._check_k(k)
        if isinstance(queries, str):
            raise TypeError("queries must be a sequence of str, got a single str")
        token_lists = self._tokenizer.tokenize_many(queries)
        with self._lock:
            checked = self._check_mask(mask)
            return [self._search_tokens(Counter(tokens), k, checked) for tokens in token_lists]

    def score(self, query: str | Mapping[str, float], slots: ArrayLike) -> NDArray[np.float64]:
        """Exact BM25 scores of given documents, whatever their rank.

        Args:
            query: The query text, or ``{term: weight}`` over index terms (as in :meth:`search`).
            slots: Live slots to score (any order, repeats allowed).

        Returns:
            One score per slot; 0.0 for a document containing no query term.

        Raises:
            KeyError: A slot does not exist or is removed.

        Example:
            >>> index = BM25Index()
            >>> _ = index.add(["solar power", "wind power", "tides"])
            >>> index.score("solar power", [2, 0]).round(3).tolist()
            [0.0, 0.532]

        """
        parsed = self._parse_query(query)
        with self._lock:
            idx = self._check_slots(slots, "slots")
            out = np.zeros(len(idx), dtype=np.float64)
            ids, qtf = self._query_terms(parsed)
            if len(ids) == 0 or len(idx) == 0:
                return out
            weights, base = self._term_weights(ids, qtf)
            matched = np.zeros(len(idx), dtype=np.bool_)
            order = np.argsort(idx, kind="stable")
            sorted_idx = idx[order]
            for seg in self._segments:
                lo, hi = np.searchsorted(sorted_idx, [seg.start, seg.stop])
                if lo == hi:
                    continue
                where = order[lo:hi]
                local = sorted_idx[lo:hi] - seg.start
                for tid, weight in zip(ids.tolist(), weights.tolist(), strict=True):
                    if tid >= seg.n_terms:
                        continue
                    a, e = int(seg.term_ptr[tid]), int(seg.term_ptr[tid + 1])
                    if a == e:
                        continue
                    docs = seg.post_docs[a:e]
                    pos = np.searchsorted(docs, local)
                    pos_c = np.minimum(pos, e - a - 1)
                    found = docs[pos_c] == local
                    if not found.any():
                        continue
                    hit = where[found]
                    tfs = seg.post_tfs[a + pos_c[found]]
                    out[hit] += self._contributions(
                        idx[hit], tfs, np.full(len(hit), weight, dtype=np.float64)
                    )
                    matched[hit] = True
            if base:
                out[matched] += base
            return out

    def expand(
        self,
        query: str,
        feedback: Sequence[str],
        *,
        n_terms: int = 20,
        weight: float = 0.5,
    ) -> dict[str, float]:
        """RM3 query expansion: the query's terms mixed with the feedback texts' top terms.

        See :func:`langchain_fusion.feedback.rm3_terms`; only terms of live documents are kept.
        Pass the result to :meth:`search` or :meth:`score`.

        Example:
            >>> index = BM25Index()
            >>> _ = index.add(["solar panels", "solar roofs and panels", "wind"])
            >>> terms = index.expand("solar", ["solar panels"], n_terms=1, weight=0.5)
            >>> {t: round(w, 2) for t, w in terms.items()}
            {'solar': 0.5, 'panel': 0.5}
            >>> index.search(terms, k=3)[0].tolist()
            [0, 1]

        """
        if isinstance(feedback, str):
            raise TypeError("feedback must be a sequence of texts, got a single str")
        tokens = self._tokenizer(query)
        docs = self._tokenizer.tokenize_many(list(feedback))
        with self._lock:
            vocab, df = self._vocab, self._df.view

            def known(term: str) -> bool:
                tid = vocab.get(term)
                return tid is not None and bool(df[tid] > 0)

            return rm3_terms(tokens, docs, n_terms=n_terms, weight=weight, known=known)

    def known_terms(self, query: str) -> list[str]:
        """Return the query's terms that occur in a live document (distinct, in query order).

        Example:
            >>> index = BM25Index()
            >>> _ = index.add(["Running shoes"])
            >>> index.known_terms("the runners were running in shoes")
            ['run', 'shoe']

        """
        tokens = self._tokenizer(query)
        with self._lock:
            vocab, df = self._vocab, self._df.view
            return [
                t for t in dict.fromkeys(tokens) if (tid := vocab.get(t)) is not None and df[tid]
            ]

    # ------------------------------------------------------------------ persistence

    def _config(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "params": {"k1": self._k1, "b": self._b, "method": self._method, "delta": self._delta},
            "tokenizer": self._tokenizer.to_config(),
            "n_slots": self.n_slots,
            "n_live": self._n_live,
            "total_len": self._total_len,
            "vocab": self._terms,
        }

    def save(self, path: str | Path) -> None:
        """Write the index into a directory: ``.npy`` arrays plus ``bm25.json``. No pickle.

        The directory is created if missing. Files are replaced atomically one by one (a
        memory-mapped index loaded from the same directory keeps working), ``bm25.json`` last.

        Args:
            path: The directory.

        Raises:
            NotADirectoryError: ``path`` exists and is not a directory.

        Example:
            >>> import tempfile
            >>> index = BM25Index()
            >>> _ = index.add(["hello world", "goodbye world"])
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     index.save(tmp)
            ...     BM25Index.load(tmp).search("hello", k=1)[0].tolist()
            [0]

        """
        directory = Path(path)
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(f"path must be a directory, got a file: {str(directory)!r}")
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if len(self._segments) > 1:
                self._segments = [self._merge(self._segments)]
            if self._segments:
                seg = self._segments[0]
            else:
                seg = build_segment(
                    0, self.n_slots, np.zeros(0, np.int64), np.zeros(0, np.int64), len(self._terms)
                )
            arrays = {
                "doc_len": self._doc_len.view,
                "live": self._live.view,
                "df": self._df.view,
                "term_ptr": seg.term_ptr,
                "post_docs": seg.post_docs,
                "post_tfs": seg.post_tfs,
                "doc_ptr": seg.doc_ptr,
                "doc_terms": seg.doc_terms,
            }
            for name, array in arrays.items():
                atomic_write(
                    directory / f"{name}.npy", lambda f, a=array: np.save(f, a, allow_pickle=False)
                )
            meta = json.dumps(self._config(), ensure_ascii=False).encode("utf-8")
            atomic_write(directory / _META_FILE, lambda f: f.write(meta))

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = True) -> BM25Index:
        """Load an index written by :meth:`save`.

        Args:
            path: The directory.
            mmap: Memory-map the postings (read-only, shared with the page cache) instead of
                reading them into memory. Either way the loaded index accepts add/remove/compact:
                new data goes to new arrays, the files are never written.

        Raises:
            FileNotFoundError: No saved index in ``path``.
            ValueError: The files are not a compatible, consistent index.

        Example:
            >>> import tempfile
            >>> index = BM25Index(method="bm25+")
            >>> _ = index.add(["alpha beta"])
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     index.save(tmp)
            ...     loaded = BM25Index.load(tmp, mmap=False)
            >>> loaded.method, loaded.add(["gamma"]).tolist()
            ('bm25+', [1])

        """
        directory = Path(path)
        meta_path = directory / _META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"no BM25 index in {str(directory)!r} (missing {_META_FILE})")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") != _FORMAT or meta.get("version") != _VERSION:
            raise ValueError(
                f"{str(meta_path)!r} is not a {_FORMAT} version {_VERSION} file "
                f"(format={meta.get('format')!r}, version={meta.get('version')!r})"
            )
        params = meta["params"]
        index = cls(Tokenizer.from_config(meta["tokenizer"]), **params)
        arrays = {
            name: np.load(
                directory / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False
            )
            for name in _ARRAYS
        }
        n_slots = int(meta["n_slots"])
        terms: list[str] = list(meta["vocab"])
        n_terms = len(terms)
        expected = {
            "doc_len": n_slots,
            "live": n_slots,
            "df": n_terms,
            "term_ptr": n_terms + 1,
            "doc_ptr": n_slots + 1,
        }
        for name, size in expected.items():
            if arrays[name].shape != (size,):
                raise ValueError(
                    f"{name}.npy has shape {arrays[name].shape}, expected ({size},) from "
                    f"{_META_FILE}: the directory is inconsistent"
                )
        n_post = int(arrays["term_ptr"][-1])
        for name in ("post_docs", "post_tfs", "doc_terms"):
            if arrays[name].shape != (n_post,):
                raise ValueError(f"{name}.npy has shape {arrays[name].shape}, expected ({n_post},)")
        index._terms = terms
        index._vocab = {t: i for i, t in enumerate(terms)}
        # Small per-slot/per-term arrays are copied (they change on add/remove); postings stay
        # mapped and are never written: merges and compaction build new arrays.
        index._df = Buffer(np.array(arrays["df"], dtype=np.int64))
        index._doc_len = Buffer(np.array(arrays["doc_len"], dtype=np.int32))
        index._live = Buffer(np.array(arrays["live"], dtype=np.bool_))
        index._n_live = int(meta["n_live"])
        index._total_len = int(meta["total_len"])
        if n_slots:
            index._segments = [
                Segment(
                    start=0,
                    n_docs=n_slots,
                    term_ptr=arrays["term_ptr"],
                    post_docs=arrays["post_docs"],
                    post_tfs=arrays["post_tfs"],
                    doc_ptr=arrays["doc_ptr"],
                    doc_terms=arrays["doc_terms"],
                )
            ]
        return index

    # ------------------------------------------------------------------ copying

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        state["_scratch"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()
