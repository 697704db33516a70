"""``Collection``: the documents of a store, their two engines, one lock and their files.

A [`Collection`][] owns everything a hybrid store keeps, slot-aligned: slot ``i`` is the
``i``-th document ever added, in the [`DocStore`][langchain_fusion.docstore.DocStore] (id,
text, metadata), in the [`BM25Index`][langchain_fusion.BM25Index] (its terms) and, unless the
collection is keyword-only, in the [`DenseIndex`][langchain_fusion.DenseIndex] (its vector).
Every add, upsert, delete and compaction is applied to all parts under one
[`ReadWriteLock`][langchain_fusion.locking.ReadWriteLock] write, so a reader never sees a
document in one part and not the others, and BM25 statistics always equal those of an index
built from scratch on the live documents. Masks of dict filters are cached until the next write.

It is the in-memory implementation of the storage seam
[`Backend`][langchain_fusion.backend.Backend] (and of its one-call
[`SupportsJointSearch`][langchain_fusion.backend.SupportsJointSearch]), and the common core of
the LangChain faces: [`HybridIndex`][langchain_fusion.HybridIndex] (a ``VectorStore``: it
embeds, validates and builds ``Document`` objects) and
[`BM25Retriever`][langchain_fusion.BM25Retriever] (a keyword-only collection). Persistence
(the atomic, checksummed directory of [`langchain_fusion.persistence`][]) is here too:
[`Collection.save`][] writes ``docstore/``, ``bm25/`` and ``dense/`` under one manifest;
[`Collection.from_snapshot`][] reads them back from a version opened by
[`load_consistent`][langchain_fusion.persistence.load_consistent].

Example:
    >>> import numpy as np
    >>> c = Collection(dense_params={})
    >>> c.add(["a", "b"], ["red apples", "green pears"], [None, {"k": 1}],
    ...       np.array([[1, 0], [0, 1]], dtype=np.float32))
    ['a', 'b']
    >>> c.search_keyword("pears", 5).ids, c.search_dense([1.0, 0.1], 1).ids
    (['b'], ['a'])
    >>> c.score_keyword("apples", ["b", "a", "zz"]).round(3).tolist()
    [0.0, 0.277, nan]
    >>> c.delete(filter={"k": 1}), c.stats().n_docs
    (True, 1)

"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from langchain_core.documents import Document
from numpy.typing import ArrayLike, NDArray

from langchain_fusion.backend import BackendStats, Hits, JointHits, KeywordQuery, combine_hits
from langchain_fusion.dense.index import DenseIndex
from langchain_fusion.docstore import DocStore
from langchain_fusion.embedding_checks import check_query_vector, describe
from langchain_fusion.filters import Filter, check_filter, compile_filter
from langchain_fusion.lexical.bm25 import BM25Index
from langchain_fusion.lexical.tokenizer import Tokenizer
from langchain_fusion.locking import ReadWriteLock
from langchain_fusion.persistence import (
    CorruptIndexError,
    IndexSnapshot,
    atomic_save,
)

__all__ = ["Collection", "check_k"]

DOCSTORE_DIR = "docstore"
BM25_DIR = "bm25"
DENSE_DIR = "dense"
_MASK_CACHE_SIZE = 16

T = TypeVar("T")

_NO_SLOTS: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
_NO_SCORES: NDArray[np.float64] = np.zeros(0, dtype=np.float64)


def check_k(value: Any, name: str = "k") -> int:
    """Return ``value`` as an int >= 1, or raise ``ValueError`` naming ``name``.

    Example:
        >>> check_k(3), check_k(True) if False else "bools are refused"
        (3, 'bools are refused')

    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _filter_key(filter: Filter) -> str | None:
    """Return a cache key for a dict filter (``None`` for callables and non-JSON values)."""
    if not isinstance(filter, dict):
        return None
    try:
        return json.dumps(filter, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None


def _check_keyword_query(query: object) -> None:
    if not isinstance(query, (str, Mapping)):
        raise TypeError(
            f"query must be a str (or a {{term: weight}} mapping), got {type(query).__name__} "
            f"{query!r}"
        )


class Collection:
    """Slot-aligned documents, BM25 index and (optional) dense index, under one lock.

    Args:
        tokenizer: BM25 tokenizer (default ``Tokenizer()``).
        k1: BM25 term-frequency saturation.
        b: BM25 length normalization.
        bm25_method: BM25 variant (see [`BM25Index`][langchain_fusion.BM25Index]).
        bm25_delta: Shift of the BM25L/BM25+ variants.
        dense_params: Keyword arguments of [`DenseIndex`][langchain_fusion.DenseIndex]
            (``kind``, ``hnsw_m``...); the dense index is created by the first add (its
            dimension is unknown before). ``None`` makes a keyword-only collection.
        identity: The embedding model's identity (see
            [`embedding_identity`][langchain_fusion.embedding_checks.embedding_identity]),
            reported by [`stats`][] and saved.

    Example:
        >>> c = Collection()  # keyword-only
        >>> c.add(["x"], ["hello world"], [None], None)
        ['x']
        >>> c.search_keyword("world", 3).ids
        ['x']

    """

    def __init__(
        self,
        *,
        tokenizer: Tokenizer | None = None,
        k1: float = 1.5,
        b: float = 0.75,
        bm25_method: str = "lucene",
        bm25_delta: float = 0.5,
        dense_params: Mapping[str, Any] | None = None,
        identity: Mapping[str, Any] | None = None,
    ) -> None:
        self.bm25 = BM25Index(tokenizer, k1=k1, b=b, method=bm25_method, delta=bm25_delta)
        self.dense_params: dict[str, Any] | None = (
            None if dense_params is None else dict(dense_params)
        )
        if self.dense_params is not None:
            DenseIndex(1, **self.dense_params)  # validates the parameters now
        self.dense: DenseIndex | None = None
        self.docs = DocStore()
        self.lock = ReadWriteLock()
        self.identity: dict[str, Any] = dict(identity or {})
        self.generation = 0
        self._mask_cache: dict[str, NDArray[np.bool_]] = {}
        self._mask_cache_generation = -1
        self._mask_cache_lock = threading.Lock()

    # ------------------------------------------------------------------ facts

    @property
    def dim(self) -> int | None:
        """Dimension of the stored vectors (``None`` while empty or keyword-only)."""
        return None if self.dense is None else self.dense.dim

    @property
    def keyword_only(self) -> bool:
        """Whether this collection has no dense side."""
        return self.dense_params is None

    @property
    def n_live(self) -> int:
        """Number of live documents."""
        return self.docs.n_live

    @property
    def n_slots(self) -> int:
        """Number of slots, tombstones included."""
        return self.docs.n_slots

    def describe_model(self) -> str:
        """Return the embedding model, described for messages."""
        return describe({**self.identity, "dim": self.dim or self.identity.get("dim")})

    def stats(self) -> BackendStats:
        """Return the number of documents, BM25 parameters, tokenizer config, model identity.

        Example:
            >>> Collection().stats().bm25["method"]
            'lucene'

        """
        with self.lock.read():
            bm25 = self.bm25
            return BackendStats(
                n_docs=self.docs.n_live,
                bm25={"k1": bm25.k1, "b": bm25.b, "method": bm25.method, "delta": bm25.delta},
                tokenizer=bm25.tokenizer.to_config(),
                embedding={**self.identity, "dim": self.dim or self.identity.get("dim")},
                dim=self.dim,
                extra={
                    "n_slots": self.docs.n_slots,
                    "dense_kind": None if self.dense is None else self.dense.active_kind,
                },
            )

    def __deepcopy__(self, memo: dict[int, Any]) -> Collection:
        """Return an independent copy (new lock, copied documents; engines via ``memo``)."""
        with self.lock.read():
            new = Collection.__new__(Collection)
            new.bm25 = copy.deepcopy(self.bm25, memo)
            new.dense = copy.deepcopy(self.dense, memo)
            new.dense_params = None if self.dense_params is None else dict(self.dense_params)
            new.docs = self.docs.copy()
            new.lock = ReadWriteLock()
            new.identity = dict(self.identity)
            new.generation = 0
            new._mask_cache = {}
            new._mask_cache_generation = -1
            new._mask_cache_lock = threading.Lock()
            return new

    def adopt(
        self,
        bm25: BM25Index,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, Any] | None],
    ) -> None:
        """Take an already built BM25 index of exactly these documents (slot i = document i).

        Raises:
            ValueError: The collection is not empty and keyword-only, or the index does not
                hold exactly ``len(ids)`` live slots.

        """
        if not self.keyword_only or self.docs.n_slots:
            raise ValueError("only an empty keyword-only collection can adopt an index")
        if bm25.n_slots != len(ids) or bm25.n_live != len(ids):
            raise ValueError(
                f"index must hold exactly the documents, slot i = docs[i], without removed "
                f"slots: got {len(ids)} documents and an index with n_live={bm25.n_live}, "
                f"n_slots={bm25.n_slots}"
            )
        with self.lock.write():
            self.docs.append(list(ids), list(texts), list(metadatas))
            self.bm25 = bm25
            self.generation += 1

    # ------------------------------------------------------------------ writes

    def check_new(self, ids: Sequence[str]) -> None:
        """Raise ``ValueError`` if one of ``ids`` is already live (caller holds a lock)."""
        existing = [i for i in ids if i in self.docs]
        if existing:
            raise ValueError(
                f"ids already in the index: {existing[:10]!r}"
                + (f" and {len(existing) - 10} more" if len(existing) > 10 else "")
                + "; pass upsert=True to replace them"
            )

    def add(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, Any] | None],
        vectors: NDArray[np.float32] | None,
        *,
        upsert: bool = True,
        show_progress: bool = False,
    ) -> list[str]:
        """Store documents in every part, atomically for readers and on failure.

        Args:
            ids: Distinct ids.
            texts: One text per id.
            metadatas: One mapping (or ``None``) per id (copied).
            vectors: ``(n, dim)`` float32 rows, already checked; ``None`` for keyword-only.
            upsert: Replace existing ids (else ``ValueError``, nothing changes).
            show_progress: Progress bar while tokenizing.

        Returns:
            The ids.

        """
        id_list = list(ids)
        if not id_list:
            return []
        if (vectors is None) != self.keyword_only:
            raise ValueError(
                "this collection is keyword-only: pass vectors=None"
                if self.keyword_only
                else "this collection stores vectors: pass one vector per text"
            )
        with self.lock.write():
            if not self._aligned():
                self._realign()
            existing = self.docs.slots_of(id_list)
            replaced = existing[existing >= 0]
            if replaced.size and not upsert:
                self.check_new(id_list)  # raises
            dense = self.dense
            if vectors is not None:
                if dense is None:
                    assert self.dense_params is not None
                    dense = DenseIndex(vectors.shape[1], normalize=True, **self.dense_params)
                elif vectors.shape[1] != dense.dim:  # another thread fixed the dim meanwhile
                    raise ValueError(
                        f"embedding {self.describe_model()} returned vectors of dimension "
                        f"{vectors.shape[1]}, but the index holds vectors of dimension "
                        f"{dense.dim}"
                    )
            start = self.docs.n_slots
            try:
                self.dense = dense
                # BM25 first: its build temporaries are freed before the dense index (vectors
                # and search structure, the bulk of the memory) grows.
                self.bm25.add(list(texts), show_progress=show_progress)
                if dense is not None and vectors is not None:
                    dense.add(vectors)
                self.docs.append(id_list, texts, metadatas, replace=replaced.tolist())
            except BaseException:
                self._roll_back(start)
                raise
            finally:
                self.generation += 1
            if replaced.size:  # live in every part (invariant), so this cannot fail
                if dense is not None:
                    dense.remove(replaced)
                self.bm25.remove(replaced)
        return id_list

    def _roll_back(self, start: int) -> None:
        """Hide every slot >= ``start`` and re-align the parts after a failed add.

        The engines cannot shrink, so slots that reached one of them are tombstoned and the
        others are padded with tombstones to the same length. Searches then behave exactly as
        before the failed call. If even the padding fails (out of memory), the next write
        finishes it (``_realign``); searches are unaffected meanwhile.
        """
        docs = self.docs
        docs.truncate(min(start, docs.n_slots))  # also repairs columns a failed append left
        for engine in (self.dense, self.bm25):
            if engine is not None and engine.n_slots > start:
                live = np.flatnonzero(engine.live_mask[start:]) + start
                if live.size:
                    engine.remove(live)
        with contextlib.suppress(Exception):
            self._realign()

    def _realign(self) -> None:
        """Pad the shorter parts with tombstoned slots so that all have equal length."""
        docs, bm25, dense = self.docs, self.bm25, self.dense
        target = max(docs.n_slots, bm25.n_slots, dense.n_slots if dense is not None else 0)
        if docs.n_slots < target:
            docs.pad(target - docs.n_slots)
        if dense is not None and dense.n_slots < target:
            pad = np.ones((target - dense.n_slots, dense.dim), dtype=np.float32)
            dense.remove(dense.add(pad))
        if bm25.n_slots < target:
            bm25.remove(bm25.add([""] * (target - bm25.n_slots)))

    def _aligned(self) -> bool:
        dense = self.dense
        n = self.docs.n_slots
        return self.bm25.n_slots == n and (dense is None or dense.n_slots == n)

    def delete(self, ids: Sequence[str] | None = None, *, filter: Filter | None = None) -> bool:
        """Delete by ids and/or filter from every part; unknown ids are ignored.

        Returns:
            ``True`` if at least one document was deleted.

        """
        id_list = [] if ids is None else list(ids)
        with self.lock.write():
            if not self._aligned():
                self._realign()
            slots = self.docs.slots_of(id_list)
            selected = slots[slots >= 0]
            if filter is not None:
                selected = np.concatenate([selected, np.flatnonzero(self.allowed_mask(filter))])
            selected = np.unique(selected)
            if not selected.size:
                return False
            if self.dense is not None:
                self.dense.remove(selected)
            self.bm25.remove(selected)
            self.docs.remove(selected.tolist())
            self.generation += 1
            return True

    def compact(self) -> int:
        """Reclaim the slots of deleted and replaced documents (renumbers every part).

        Returns:
            The number of slots reclaimed.

        """
        with self.lock.write():
            if not self._aligned():
                self._realign()
            reclaimed = self.docs.n_slots - self.docs.n_live
            if not reclaimed:
                return 0
            mapping = self.bm25.compact()
            if self.dense is not None:
                dense_mapping = self.dense.compact()
                if not np.array_equal(mapping, dense_mapping):
                    raise RuntimeError("the dense and BM25 indexes are out of sync")
            self.docs.compact(mapping)
            self.generation += 1
            return reclaimed

    def set_bm25_params(self, *, k1: float | None = None, b: float | None = None) -> None:
        """Change BM25's ``k1`` and/or ``b`` in place (nothing is rebuilt)."""
        with self.lock.write():
            self.bm25.set_params(k1=k1, b=b)
            self.generation += 1

    # ------------------------------------------------------------------ reads

    def document(self, slot: int) -> Document:
        """Return a fresh ``Document`` for a slot (caller holds a lock)."""
        docs = self.docs
        return Document(
            page_content=docs.text(slot), metadata=docs.metadata(slot), id=docs.id(slot)
        )

    def documents_or_none(self, ids: Sequence[str]) -> list[Document | None]:
        """Documents for ids, ``None`` for an unknown (or meanwhile deleted) id."""
        with self.lock.read():
            slots = self.docs.slots_of(list(ids))
            return [self.document(int(s)) if s >= 0 else None for s in slots]

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Documents by id, in the order of ``ids``; unknown ids are skipped.

        Example:
            >>> c = Collection(); _ = c.add(["1", "2"], ["a", "b"], [None, None], None)
            >>> [d.id for d in c.get_by_ids(["2", "nope", "1"])]
            ['2', '1']

        """
        return [doc for doc in self.documents_or_none(ids) if doc is not None]

    def allowed_mask(self, filter: Filter) -> NDArray[np.bool_]:
        """Boolean mask over slots: live and matching ``filter`` (caller holds a lock)."""
        check_filter(filter)  # depth first: the cache key's json.dumps recurses too
        key = _filter_key(filter)
        generation = self.generation
        if key is not None:
            with self._mask_cache_lock:
                if self._mask_cache_generation == generation and key in self._mask_cache:
                    return self._mask_cache[key]
        predicate = compile_filter(filter)
        if predicate is None:
            raise TypeError("filter must be a dict or a callable, got None")
        mask = self.docs.match(predicate)
        mask.flags.writeable = False
        if key is not None:
            with self._mask_cache_lock:
                if self._mask_cache_generation != generation:
                    self._mask_cache = {}
                    self._mask_cache_generation = generation
                if len(self._mask_cache) >= _MASK_CACHE_SIZE:
                    del self._mask_cache[next(iter(self._mask_cache))]
                self._mask_cache[key] = mask
        return mask

    def _mask(self, filter: Filter | None) -> NDArray[np.bool_] | None:
        return None if filter is None else self.allowed_mask(filter)

    def as_query(self, vector: ArrayLike, name: str = "query_vector") -> NDArray[np.float32]:
        """Return a query vector checked against the stored dimension (float32, finite)."""
        return check_query_vector(vector, self.dim, self.describe_model, name)

    def dense_top(
        self, queries: NDArray[np.float32], k: int, filter: Filter | None
    ) -> list[tuple[NDArray[np.int64], NDArray[np.float64]]]:
        """Top-k live slots and cosine scores per query row (caller holds the read lock)."""
        dense = self.dense
        empty = [(_NO_SLOTS, _NO_SCORES) for _ in range(queries.shape[0])]
        if dense is None or not self.docs.n_live:
            return empty
        mask = self._mask(filter)
        if mask is not None and not mask.any():
            return empty
        # no more than the live documents: a huge k must not allocate (q, k) arrays
        slots, scores = dense.search(queries, min(k, self.docs.n_live), mask=mask)
        out = []
        for row_slots, row_scores in zip(slots, scores, strict=True):
            keep = row_slots >= 0
            out.append((row_slots[keep], row_scores[keep].astype(np.float64)))
        return out

    def keyword_top(
        self, query: KeywordQuery, k: int, filter: Filter | None
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Top-k live slots and BM25 scores (> 0) (caller holds the read lock)."""
        _check_keyword_query(query)
        if not self.docs.n_live:
            return _NO_SLOTS, _NO_SCORES
        mask = self._mask(filter)
        if mask is not None and not mask.any():
            return _NO_SLOTS, _NO_SCORES
        n_bm25 = self.bm25.n_slots
        if mask is not None and mask.shape[0] != n_bm25:  # only after a failed re-alignment
            mask = np.concatenate([mask, np.zeros(max(0, n_bm25 - mask.shape[0]), np.bool_)])
            mask = mask[:n_bm25]
        slots, scores = self.bm25.search(query, k, mask=mask)
        return slots, np.asarray(scores, dtype=np.float64)

    def search_dense(
        self, query_vector: ArrayLike, k: int, *, filter: Filter | None = None
    ) -> Hits:
        """Top-``k`` ids by cosine similarity, best first (see the Backend protocol)."""
        k = check_k(k)
        query = self.as_query(query_vector)
        with self.lock.read():
            slots, scores = self.dense_top(query[None, :], k, filter)[0]
            return Hits(self.docs.ids_of(slots.tolist()), scores)

    def search_keyword(self, query: KeywordQuery, k: int, *, filter: Filter | None = None) -> Hits:
        """Top-``k`` ids by BM25, best first, score > 0 only (see the Backend protocol)."""
        k = check_k(k)
        with self.lock.read():
            slots, scores = self.keyword_top(query, k, filter)
            return Hits(self.docs.ids_of(slots.tolist()), scores)

    def score_dense(self, query_vector: ArrayLike, ids: Sequence[str]) -> NDArray[np.float64]:
        """Exact cosine similarity per id; NaN for an unknown id."""
        query = self.as_query(query_vector)
        with self.lock.read():
            return self._score_dense(query, list(ids))

    def _score_dense(self, query: NDArray[np.float32], ids: list[str]) -> NDArray[np.float64]:
        slots = self.docs.slots_of(ids)
        out = np.full(len(slots), np.nan)
        known = slots >= 0
        if known.any() and self.dense is not None:
            out[known] = self.dense.score(query, slots[known])
        return out

    def score_keyword(self, query: KeywordQuery, ids: Sequence[str]) -> NDArray[np.float64]:
        """Exact BM25 score per id; 0.0 without a query term, NaN for an unknown id."""
        _check_keyword_query(query)
        with self.lock.read():
            return self._score_keyword(query, list(ids))

    def _score_keyword(self, query: KeywordQuery, ids: list[str]) -> NDArray[np.float64]:
        slots = self.docs.slots_of(ids)
        out = np.full(len(slots), np.nan)
        known = slots >= 0
        if known.any():
            out[known] = self.bm25.score(query, slots[known])
        return out

    def search_joint(
        self,
        query: KeywordQuery,
        query_vector: ArrayLike,
        k_dense: int,
        k_keyword: int,
        *,
        filter: Filter | None = None,
        complete: bool = True,
    ) -> JointHits:
        """Both sides' candidates and their complete scores, under one read lock.

        Example:
            >>> c = Collection(dense_params={})
            >>> _ = c.add(["a", "b"], ["red", "blue"], [None, None],
            ...           np.array([[1, 0], [0, 1]], dtype=np.float32))
            >>> j = c.search_joint("blue", [1.0, 0.0], 1, 1)
            >>> j.ids, j.dense_scores.tolist(), j.keyword_scores.round(3).tolist()
            (['a', 'b'], [1.0, 0.0], [0.0, 0.277])

        """
        k_dense, k_keyword = check_k(k_dense, "k_dense"), check_k(k_keyword, "k_keyword")
        _check_keyword_query(query)
        vector = self.as_query(query_vector)
        with self.lock.read():
            d_slots, d_scores = self.dense_top(vector[None, :], k_dense, filter)[0]
            k_slots, k_scores = self.keyword_top(query, k_keyword, filter)
            return combine_hits(
                Hits(self.docs.ids_of(d_slots.tolist()), d_scores),
                Hits(self.docs.ids_of(k_slots.tolist()), k_scores),
                lambda ids: self._score_dense(vector, ids),
                lambda ids: self._score_keyword(query, ids),
                complete=complete,
            )

    # ------------------------------------------------------------------ persistence

    def parameters(self) -> dict[str, Any]:
        """Return what the manifest records about this collection (caller holds a lock)."""
        bm25 = self.bm25
        return {
            "n_slots": self.docs.n_slots,
            "n_live": self.docs.n_live,
            "embedding": {**self.identity, "dim": self.dim or self.identity.get("dim")},
            "tokenizer": bm25.tokenizer.to_config(),
            "bm25": {"k1": bm25.k1, "b": bm25.b, "method": bm25.method, "delta": bm25.delta},
            "dense": None if self.dense_params is None else dict(self.dense_params),
        }

    def save(
        self,
        path: str | Path,
        *,
        overwrite: bool = True,
        extra: Callable[[], Mapping[str, Any]] | None = None,
    ) -> Path:
        """Save atomically into a checksummed index directory (see `persistence`).

        Args:
            path: The directory.
            overwrite: Replace an existing index there.
            extra: Returns more manifest parameters, called under the same read lock (the
                faces' own settings: ``batch_size``, a retriever's ``k`` and filter...).

        Returns:
            The absolute path written.

        """

        def write(directory: Path) -> dict[str, Any]:
            with self.lock.read():
                (directory / DOCSTORE_DIR).mkdir()
                self.docs.save(directory / DOCSTORE_DIR)
                self.bm25.save(directory / BM25_DIR)
                if self.dense is not None:
                    (directory / DENSE_DIR).mkdir()
                    self.dense.save(directory / DENSE_DIR)
                params = self.parameters()
                if extra is not None:
                    params.update(extra())
                return params

        return atomic_save(path, write, overwrite=overwrite)

    @classmethod
    def from_snapshot(
        cls, snapshot: IndexSnapshot, *, mmap: bool = True, dense_params: Any = None
    ) -> Collection:
        """Build a collection from a verified snapshot (see `persistence.load_consistent`).

        Raises:
            CorruptIndexError: Incomplete parameters, a part that cannot be parsed, or parts
                that disagree (the message names the file or part).

        """
        params = snapshot.manifest["parameters"]
        manifest_name = snapshot.display(snapshot.manifest_file)
        try:
            bm25_params = params["bm25"]
            collection = cls(
                tokenizer=Tokenizer.from_config(params["tokenizer"]),
                k1=bm25_params["k1"],
                b=bm25_params["b"],
                bm25_method=bm25_params["method"],
                bm25_delta=bm25_params["delta"],
                dense_params=dense_params,
                identity=params.get("embedding") or {},
            )
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as exc:
            raise CorruptIndexError(
                f"{manifest_name} is damaged: its parameters are incomplete or invalid ({exc!r})"
            ) from exc
        root = snapshot.root
        collection.docs = _load_part(
            snapshot, DOCSTORE_DIR, lambda: DocStore.load(root / DOCSTORE_DIR, mmap=mmap)
        )
        collection.bm25 = _load_part(
            snapshot, BM25_DIR, lambda: BM25Index.load(root / BM25_DIR, mmap=mmap)
        )
        if (root / DENSE_DIR).is_dir():
            collection.dense = _load_part(
                snapshot, DENSE_DIR, lambda: DenseIndex.load(root / DENSE_DIR, mmap=mmap)
            )
        collection.check_consistent(snapshot, params)
        return collection

    def check_consistent(self, snapshot: IndexSnapshot, params: Mapping[str, Any]) -> None:
        """Refuse parts whose slot counts or live documents disagree."""
        docs, bm25, dense = self.docs, self.bm25, self.dense
        n = docs.n_slots
        parts = {"docstore": n, "bm25": bm25.n_slots}
        if dense is not None:
            parts["dense"] = dense.n_slots
        elif n and not self.keyword_only:
            parts["dense"] = 0
        if set(parts.values()) != {params.get("n_slots", n)}:
            raise CorruptIndexError(
                f"the index at {snapshot.display()} is inconsistent: slot counts {parts} "
                f"(manifest: {params.get('n_slots')})"
            )
        live = docs.live_mask
        if not np.array_equal(live, bm25.live_mask) or (
            dense is not None and not np.array_equal(live, dense.live_mask)
        ):
            raise CorruptIndexError(
                f"the index at {snapshot.display()} is inconsistent: the live documents differ "
                "between the docstore and the engines"
            )


_PART_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
    RecursionError,
    EOFError,
    RuntimeError,
    AttributeError,
    OSError,
    MemoryError,
)


def _load_part(snapshot: IndexSnapshot, name: str, load: Callable[[], T]) -> T:
    """Run ``load``; a part that cannot be parsed is a `CorruptIndexError` naming it."""
    try:
        return load()
    except (FileNotFoundError, CorruptIndexError):
        raise
    except _PART_ERRORS as exc:
        # FAISS raises RuntimeError for a foreign file, json RecursionError for deep nesting,
        # numpy ValueError/EOFError for a bad header...: only reachable when the checksums were
        # skipped (verify="size") or re-signed by whoever replaced the file.
        detail = snapshot.clean(f"{type(exc).__name__}: {exc}")[:300]
        raise CorruptIndexError(
            f"{snapshot.display(name + '/')} in the index is damaged and cannot be read "
            f"({detail}); copy the index again or rebuild it (verify='full', the default, "
            "checks every file against its checksum first)"
        ) from exc
