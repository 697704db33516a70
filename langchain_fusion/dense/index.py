"""``DenseIndex``: an append-only array of vector *slots* with tombstones, searched by FAISS.

The index keeps the float32 vectors itself (a growable buffer) for exact scoring, rebuilds and
saving; FAISS holds the approximate search structure (HNSW graph or IVF lists). Slots are
assigned consecutively (0, 1, 2, ...) and never reused, so the index stays aligned slot for slot
with a ``BM25Index`` that receives the same adds in the same order.

An HNSW index stores its vectors once on disk: FAISS's HNSW file holds them (its flat storage),
so ``vectors.npy`` is not written, and after loading the index's vectors are a read-only view of
that storage (memory-mapped from the file by default) instead of a second copy (1.5 GB less on
disk for a million 384-d vectors). The first add after loading copies them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, cast

import faiss as _faiss_module
import numpy as np
from numpy.typing import ArrayLike, NDArray

from langchain_fusion.dense._rwlock import _RWLock

__all__ = ["DenseIndex"]

# FAISS's SWIG bindings are untyped in practice (the partial stubs miss the search parameters).
faiss: Any = _faiss_module

_KINDS = ("auto", "flat", "hnsw", "ivf")
_FORMAT_VERSION = 2  # 2: an HNSW index's vectors live in faiss.index only (1: also vectors.npy)
_READABLE_FORMAT_VERSIONS = (1, 2)
_PARAMS_FILE = "dense_index.json"
_VECTORS_FILE = "vectors.npy"
_LIVE_FILE = "live.npy"
_FAISS_FILE = "faiss.index"

# Exact search computes at most this many scores per matrix product (bounds temporary memory).
_EXACT_CHUNK_SCORES = 1 << 24
# Added vectors are validated, converted and normalized this many rows at a time (bounds the
# temporaries: no full float64 or float32 copy of the input).
_ROW_CHUNK = 16_384
# With a mask or tombstones, exact search gathers the allowed rows first when they are fewer than
# this fraction of the slots; otherwise it scores every slot and discards the disallowed ones
# (measured at 100k x 384: gathering 10% of the rows costs ~1/3 of a full scan, 25% about as much).
_GATHER_FRACTION = 0.15
# Filtered approximate search falls back to an exact scan of the allowed vectors when they are
# few (exact scan cost grows with the allowed count, a filtered HNSW walk costs ~4-6 ms whatever
# the count; measured crossover at 100k x 384: ~5-10k allowed vectors) or when they are a tiny
# fraction of the index (the widened efSearch is capped, so recall would drop below ~1%).
_EXACT_FILTER_MAX_ALLOWED = 8_000
_EXACT_FILTER_MAX_FRACTION = 0.01
# Upper bound of the widened efSearch used for filtered HNSW searches.
_MAX_FILTERED_EF = 1024
# Auto nlist for IVF: ~4 * sqrt(n), with at least this many training points per list.
_MIN_POINTS_PER_LIST = 39
_TRAIN_POINTS_PER_LIST = 64
# Auto-nlist IVF indexes are retrained once the live count grows by this factor.
_IVF_RETRAIN_GROWTH = 4.0


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def _auto_nlist(n: int) -> int:
    """Default IVF list count: ~4*sqrt(n), with enough training points per list."""
    return max(1, min(round(4 * math.sqrt(n)), n // _MIN_POINTS_PER_LIST))


class DenseIndex:
    """Inner-product (cosine) nearest-neighbour search over slot-addressed float32 vectors.

    Slots are consecutive integers assigned by :meth:`add` and never reused; :meth:`remove`
    tombstones them (removed slots are never returned) and :meth:`compact` renumbers. Search
    structure by ``kind``:

    - ``"flat"``: exact brute force (numpy matrix product + partial sort).
    - ``"hnsw"``: FAISS ``IndexHNSWFlat`` (approximate, fast at any size); vectors are inserted
      into the graph as they are added.
    - ``"ivf"``: FAISS ``IndexIVFFlat``, trained lazily (at the first search or save) on the
      vectors present; with ``nlist=None`` it is retrained when the index has grown 4x.
    - ``"auto"`` (default): flat while fewer than ``hnsw_threshold`` vectors are live; the HNSW
      graph is built by the :meth:`add` that crosses the threshold, after which
      :attr:`active_kind` is ``"hnsw"`` (until :meth:`compact` shrinks the index below it).

    Tombstones and the optional search ``mask`` are applied inside FAISS (an ID selector), so a
    filtered search still returns ``k`` results when ``k`` allowed vectors exist; very selective
    filters use an exact scan of the allowed vectors instead (exact and faster).

    Thread safety: any number of concurrent searches with one writer; mutations (``add``,
    ``remove``, ``compact``, lazy IVF training) take an internal exclusive lock.

    Args:
        dim: Vector dimension.
        kind: ``"auto"``, ``"flat"``, ``"hnsw"`` or ``"ivf"``.
        normalize: Scale added vectors and queries to unit length, so scores are cosine
            similarities (zero vectors are then rejected). ``False`` keeps raw inner products.
        hnsw_m: HNSW graph degree ``M``.
        ef_construction: HNSW ``efConstruction`` (graph quality at build time).
        ef_search: HNSW ``efSearch`` (recall/speed trade-off; raised to ``k`` when smaller).
            The default 128 gives recall@10 0.986 vs exact search at 1M embedding-like vectors
            (p50 0.6 ms on 2 cores); 64 gives 0.977, 256 gives 0.996 (``bench_dense.py``).
        nlist: IVF list count; ``None`` picks ~``4*sqrt(n)`` at training time.
        nprobe: IVF lists visited per query.
        hnsw_threshold: With ``kind="auto"``, the live-vector count from which HNSW is used.

    Example:
        >>> import numpy as np
        >>> index = DenseIndex(3, kind="flat")
        >>> index.add([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 1.0, 0.0]])
        array([0, 1, 2])
        >>> slots, scores = index.search([1.0, 0.0, 0.0], k=2)
        >>> slots, scores.round(3)
        (array([[0, 2]]), array([[1.   , 0.707]]))
        >>> index.remove([0])
        >>> index.search([1.0, 0.0, 0.0], k=3)[0]  # padded with -1
        array([[ 2,  1, -1]])
        >>> index.search([1.0, 0.0, 0.0], k=3, mask=np.array([True, True, False]))[0]
        array([[ 1, -1, -1]])

    """

    def __init__(
        self,
        dim: int,
        *,
        kind: str = "auto",
        normalize: bool = True,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        nlist: int | None = None,
        nprobe: int = 16,
        hnsw_threshold: int = 200_000,
    ) -> None:
        self.dim: int = _check_int(dim, "dim", 1)
        if not isinstance(kind, str) or kind not in _KINDS:
            raise ValueError(f"kind must be one of {', '.join(map(repr, _KINDS))}, got {kind!r}")
        if not isinstance(normalize, (bool, np.bool_)):
            raise TypeError(f"normalize must be a bool, got {type(normalize).__name__}")
        self.kind: str = kind
        self.normalize: bool = bool(normalize)
        self.hnsw_m: int = _check_int(hnsw_m, "hnsw_m", 2)
        self.ef_construction: int = _check_int(ef_construction, "ef_construction", 1)
        self.ef_search: int = _check_int(ef_search, "ef_search", 1)
        self.nlist: int | None = None if nlist is None else _check_int(nlist, "nlist", 1)
        self.nprobe: int = _check_int(nprobe, "nprobe", 1)
        self.hnsw_threshold: int = _check_int(hnsw_threshold, "hnsw_threshold", 1)

        self._lock = _RWLock()
        self._vectors: NDArray[np.float32] = np.empty((0, self.dim), dtype=np.float32)
        self._live: NDArray[np.bool_] = np.zeros(0, dtype=np.bool_)
        self._n = 0
        self._n_live = 0
        self._active_kind = "ivf" if kind == "ivf" else "hnsw" if kind == "hnsw" else "flat"
        # FAISS structure (hnsw / ivf) covering slots [0, _faiss_n), FAISS ids == slots.
        self._faiss: Any = self._new_hnsw() if self._active_kind == "hnsw" else None
        self._faiss_n = 0
        self._ivf_trained_live = 0
        # The FAISS object loaded with its vectors mapped read-only from the file (see load);
        # FAISS aborts the process on an add to it, so the first add works on an owned copy.
        self._mapped_faiss: Any = None
        # The FAISS object whose storage self._vectors views after a load (see load); kept
        # alive for as long as the view is, and dropped when self._vectors is replaced.
        self._vectors_owner: Any = None

    # ------------------------------------------------------------------ properties

    @property
    def active_kind(self) -> str:
        """The resolved search structure: ``"flat"``, ``"hnsw"`` or ``"ivf"``.

        Example:
            >>> DenseIndex(4).active_kind
            'flat'

        """
        return self._active_kind

    @property
    def n_slots(self) -> int:
        """Number of slots ever assigned, including removed ones.

        Example:
            >>> index = DenseIndex(2)
            >>> _ = index.add([[1.0, 0.0], [0.0, 1.0]]); index.remove([0])
            >>> index.n_slots, index.n_live
            (2, 1)

        """
        return self._n

    @property
    def n_live(self) -> int:
        """Number of live (not removed) vectors.

        Example:
            >>> DenseIndex(2).n_live
            0

        """
        return self._n_live

    @property
    def live_mask(self) -> NDArray[np.bool_]:
        """A copy of the liveness of every slot (length :attr:`n_slots`, True = live).

        Example:
            >>> index = DenseIndex(2)
            >>> _ = index.add([[1.0, 0.0], [0.0, 1.0]]); index.remove([1])
            >>> index.live_mask
            array([ True, False])

        """
        with self._lock.read():
            live: NDArray[np.bool_] = self._live[: self._n].copy()
        return live

    def __repr__(self) -> str:
        return (
            f"DenseIndex(dim={self.dim}, kind={self.kind!r}, active_kind={self._active_kind!r}, "
            f"n_live={self._n_live}, n_slots={self._n})"
        )

    # ------------------------------------------------------------------ validation

    def _as_matrix(self, data: ArrayLike, name: str, *, allow_1d: bool) -> NDArray[np.float32]:
        """Validate ``data`` as an (n, dim) matrix of finite floats; normalize if configured."""
        arr, norms = self._check_matrix(data, name, allow_1d=allow_1d)
        out = np.empty(arr.shape, dtype=np.float32)
        self._write_rows(arr, norms, out)
        return out

    def _check_matrix(
        self, data: ArrayLike, name: str, *, allow_1d: bool
    ) -> tuple[NDArray[Any], NDArray[np.float64] | None]:
        """Validate ``data`` without copying it whole.

        Returns:
            ``(matrix, norms)``: ``data`` as an ``(n, dim)`` real array (not converted, not
            copied when it already is one) and, with ``normalize=True``, the float64 norm of
            each row after conversion to float32 (``None`` otherwise).

        """
        try:
            arr = np.asarray(data)
        except (TypeError, ValueError) as exc:  # ragged nested lists
            raise ValueError(
                f"{name} must be a 2-D array of shape (n, {self.dim}), got a ragged sequence"
            ) from exc
        if arr.size == 0 and arr.ndim <= 2 and (arr.ndim < 2 or arr.shape[1] in (0, self.dim)):
            empty = np.empty((0, self.dim), dtype=np.float32)
            return empty, np.zeros(0) if self.normalize else None
        if arr.dtype.kind not in "iuf":
            raise TypeError(
                f"{name} must hold real numbers, got dtype {arr.dtype} "
                f"(expected an array of shape (n, {self.dim}) of floats)"
            )
        if arr.ndim == 1 and allow_1d:
            arr = arr[None, :]
        if arr.ndim != 2:
            shape_hint = f"(n, {self.dim}) or ({self.dim},)" if allow_1d else f"(n, {self.dim})"
            raise ValueError(f"{name} must have shape {shape_hint}, got shape {arr.shape}")
        if arr.shape[1] != self.dim:
            raise ValueError(
                f"{name} has dimension {arr.shape[1]}, expected dimension {self.dim} "
                f"(shape {arr.shape})"
            )
        n = arr.shape[0]
        norms = np.empty(n, dtype=np.float64) if self.normalize else None
        bad_row = -1
        for start in range(0, n, _ROW_CHUNK):
            block = self._float32_rows(arr, start)
            finite = np.isfinite(block).all(axis=1)
            if not finite.all():
                bad_row = start + int(np.flatnonzero(~finite)[0])
                break
            if norms is not None:
                norms[start : start + len(block)] = np.linalg.norm(block.astype(np.float64), axis=1)
        if bad_row >= 0:
            raise ValueError(
                f"{name} row {bad_row} contains NaN or infinity (or a value beyond float32 "
                "range); all values must be finite"
            )
        if norms is not None and not norms.all():
            row = int(np.flatnonzero(norms == 0)[0])
            raise ValueError(
                f"{name} row {row} is a zero vector, which has no direction; "
                "normalize=True needs non-zero vectors"
            )
        return arr, norms

    @staticmethod
    def _float32_rows(arr: NDArray[Any], start: int) -> NDArray[np.float32]:
        """Rows ``[start, start + _ROW_CHUNK)`` as C-contiguous float32 (a view if they are)."""
        with np.errstate(over="ignore"):  # beyond float32 range -> inf, reported by the caller
            return np.ascontiguousarray(arr[start : start + _ROW_CHUNK], dtype=np.float32)

    def _write_rows(
        self, arr: NDArray[Any], norms: NDArray[np.float64] | None, out: NDArray[np.float32]
    ) -> None:
        """Write the checked rows of ``arr`` (normalized when ``norms`` is given) into ``out``.

        Row block by row block, so the only temporaries are one block's (never a full copy).
        """
        for start in range(0, arr.shape[0], _ROW_CHUNK):
            block = self._float32_rows(arr, start)
            stop = start + len(block)
            if norms is None:
                out[start:stop] = block
            else:  # float64 division, rounded to float32
                out[start:stop] = block / norms[start:stop, None]

    def _as_slots(self, slots: ArrayLike, name: str = "slots") -> NDArray[np.int64]:
        """Validate ``slots`` as 1-D integers of live slots (caller holds a lock)."""
        arr = np.asarray(slots)
        if arr.ndim > 1:
            raise ValueError(f"{name} must be a 1-D sequence of ints, got shape {arr.shape}")
        arr = arr.reshape(-1)
        if arr.size == 0:
            return np.empty(0, dtype=np.int64)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold ints, got dtype {arr.dtype}")
        out = arr.astype(np.int64)
        bad_range = (out < 0) | (out >= self._n)
        if bad_range.any():
            slot = int(out[np.flatnonzero(bad_range)[0]])
            raise KeyError(f"slot {slot} does not exist: valid slots are 0..{self._n - 1}")
        dead = ~self._live[out]
        if dead.any():
            slot = int(out[np.flatnonzero(dead)[0]])
            raise KeyError(f"slot {slot} was removed")
        return out

    # ------------------------------------------------------------------ mutation

    def add(self, vectors: ArrayLike) -> NDArray[np.int64]:
        """Append vectors and return their new, consecutive slots.

        All rows are validated before anything changes, so a bad row leaves the index untouched.

        Args:
            vectors: Shape ``(n, dim)``, finite real numbers (normalized to unit length when
                ``normalize=True``). An empty input adds nothing.

        Returns:
            The assigned slots, ``n_slots .. n_slots + n - 1`` (int64).

        Raises:
            ValueError: Wrong shape or dimension, NaN/inf values, or a zero vector when
                ``normalize=True``.
            TypeError: Non-numeric data.

        Example:
            >>> index = DenseIndex(2)
            >>> index.add([[3.0, 4.0]])
            array([0])
            >>> index.get_vectors([0])  # normalized
            array([[0.6, 0.8]], dtype=float32)
            >>> index.add([[1.0, 2.0, 3.0]])
            Traceback (most recent call last):
            ...
            ValueError: vectors has dimension 3, expected dimension 2 (shape (1, 3))

        """
        matrix, norms = self._check_matrix(vectors, "vectors", allow_1d=False)
        m = matrix.shape[0]
        with self._lock.write():
            start = self._n
            if m == 0:
                return np.empty(0, dtype=np.int64)
            self._reserve_live(start + m)
            if (
                self.kind == "auto"
                and self._active_kind == "flat"
                and self._n_live + m >= self.hnsw_threshold
            ):
                # This add crosses the threshold: build the graph from the rows held so far and
                # send the new rows straight to it, so the peak never holds two full copies.
                self._active_kind = "hnsw"
                self._faiss = self._new_hnsw()
                self._faiss_n = 0
                if start:
                    self._faiss.add(self._vectors[:start])
                    self._faiss_n = start
            if self._active_kind == "hnsw" and self._faiss is not None:
                # One copy: the rows go straight into FAISS's storage, which self._vectors views.
                self._add_to_hnsw(matrix, norms)
            else:
                self._reserve(start + m)
                # Beyond self._n until the counters move: invisible to searches until then.
                self._write_rows(matrix, norms, self._vectors[start : start + m])
            self._live[start : start + m] = True
            self._n = start + m
            self._n_live += m
            self._sync_structure()
        return np.arange(start, start + m, dtype=np.int64)

    def _reserve_live(self, capacity: int) -> None:
        """Grow the liveness buffer (amortised doubling)."""
        current = self._live.shape[0]
        if capacity <= current:
            return
        live = np.zeros(max(capacity, 2 * current, 16), dtype=np.bool_)
        live[: self._n] = self._live[: self._n]
        self._live = live

    def _reserve(self, capacity: int) -> None:
        """Grow the vector buffer (amortised doubling); a read-only buffer is copied."""
        current = self._vectors.shape[0]
        if capacity <= current and self._vectors.flags.writeable:
            return
        new_capacity = max(capacity, 2 * current, 16)
        vectors = np.empty((new_capacity, self.dim), dtype=np.float32)
        vectors[: self._n] = self._vectors[: self._n]
        self._vectors = vectors
        self._vectors_owner = None

    def _owned_faiss(self) -> Any:
        """Return the FAISS structure, copied first if it is the mapped read-only one (see load)."""
        if self._faiss is self._mapped_faiss and self._faiss is not None:
            owned = faiss.deserialize_index(faiss.serialize_index(self._faiss))
            self._vectors = _storage_view(owned, self._n, self.dim)
            self._vectors_owner = owned
            self._faiss = owned
            self._mapped_faiss = None
        return self._faiss

    def _add_to_hnsw(self, matrix: NDArray[Any], norms: NDArray[np.float64] | None) -> None:
        """Append checked rows to the HNSW graph (caller holds the write lock, HNSW is in sync).

        Rows are normalized a block at a time into a scratch buffer, so the only full copy of
        the vectors is FAISS's; afterwards ``self._vectors`` is a read-only view of it.
        """
        hnsw = self._owned_faiss()
        scratch = np.empty((min(_ROW_CHUNK, matrix.shape[0]), self.dim), dtype=np.float32)
        for start in range(0, matrix.shape[0], _ROW_CHUNK):
            block = matrix[start : start + _ROW_CHUNK]
            out = scratch[: block.shape[0]]
            self._write_rows(block, None if norms is None else norms[start:], out)
            hnsw.add(out)
        total = self._n + matrix.shape[0]
        self._faiss_n = total
        self._vectors = _storage_view(hnsw, total, self.dim)
        self._vectors_owner = hnsw

    def remove(self, slots: ArrayLike) -> None:
        """Tombstone slots: they are never returned by :meth:`search` again.

        Args:
            slots: Live slots to remove (duplicates allowed). All are checked first, so an
                unknown or already removed slot leaves the index untouched.

        Raises:
            KeyError: A slot that does not exist or was already removed.

        Example:
            >>> index = DenseIndex(2)
            >>> _ = index.add([[1.0, 0.0], [0.0, 1.0]])
            >>> index.remove([1])
            >>> index.remove([1])
            Traceback (most recent call last):
            ...
            KeyError: 'slot 1 was removed'

        """
        with self._lock.write():
            checked = np.unique(self._as_slots(slots))
            self._live[checked] = False
            self._n_live -= int(checked.size)

    def compact(self) -> NDArray[np.int64]:
        """Drop the removed slots, renumber the live ones and rebuild the search structure.

        Returns:
            ``mapping`` of length (old) :attr:`n_slots`: ``mapping[old_slot]`` is the new slot,
            or -1 for a removed slot. Live slots keep their relative order.

        Example:
            >>> index = DenseIndex(2)
            >>> _ = index.add([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
            >>> index.remove([0])
            >>> index.compact()
            array([-1,  0,  1])
            >>> index.n_slots, index.n_live
            (2, 2)

        """
        with self._lock.write():
            n = self._n
            live = self._live[:n]
            mapping = np.full(n, -1, dtype=np.int64)
            mapping[live] = np.arange(self._n_live, dtype=np.int64)
            self._vectors = np.ascontiguousarray(self._vectors[:n][live])
            self._vectors_owner = None
            self._live = np.ones(self._n_live, dtype=np.bool_)
            self._n = self._n_live
            if self.kind == "auto":
                self._active_kind = "hnsw" if self._n_live >= self.hnsw_threshold else "flat"
            self._faiss = None
            self._faiss_n = 0
            self._ivf_trained_live = 0
            if self._active_kind == "hnsw":
                self._faiss = self._new_hnsw()
            self._sync_structure()
            if self._active_kind == "ivf":
                self._train_ivf()
            return mapping

    # ------------------------------------------------------------------ FAISS structures

    def _new_hnsw(self) -> Any:
        index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        index.hnsw.efSearch = self.ef_search
        return index

    def _sync_structure(self) -> None:
        """Bring the FAISS structure up to date after an add (caller holds the write lock)."""
        if (
            self.kind == "auto"
            and self._active_kind == "flat"
            and self._n_live >= self.hnsw_threshold
        ):
            self._active_kind = "hnsw"
            self._faiss = self._new_hnsw()
            self._faiss_n = 0
        if self._faiss is not None and self._faiss_n < self._n:
            self._owned_faiss().add(self._vectors[self._faiss_n : self._n])
            self._faiss_n = self._n
            if self._active_kind == "hnsw":  # keep one copy: view FAISS's, drop ours
                self._vectors = _storage_view(self._faiss, self._n, self.dim)
                self._vectors_owner = self._faiss

    def _ivf_needs_training(self) -> bool:
        if self._active_kind != "ivf" or self._n_live == 0:
            return False
        nlist = self.nlist if self.nlist is not None else _auto_nlist(self._n_live)
        if self._faiss is None:
            return self._n_live >= nlist
        return self.nlist is None and self._n_live >= _IVF_RETRAIN_GROWTH * self._ivf_trained_live

    def _train_ivf(self) -> None:
        """(Re)train the IVF structure on the live vectors (caller holds the write lock)."""
        n_live = self._n_live
        nlist = self.nlist if self.nlist is not None else _auto_nlist(n_live)
        if n_live < nlist:  # too few vectors to train: exact search until there are enough
            self._faiss, self._faiss_n, self._ivf_trained_live = None, 0, 0
            return
        live_slots = np.flatnonzero(self._live[: self._n])
        n_train = min(n_live, _TRAIN_POINTS_PER_LIST * nlist)
        if n_train < n_live:
            rng = np.random.default_rng(0)
            live_slots = np.sort(rng.choice(live_slots, size=n_train, replace=False))
        sample = np.ascontiguousarray(self._vectors[live_slots])
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.spherical = self.normalize
        index.cp.max_points_per_centroid = _TRAIN_POINTS_PER_LIST
        index.train(sample)
        index.add(self._vectors[: self._n])
        index.nprobe = self.nprobe
        self._faiss, self._faiss_n, self._ivf_trained_live = index, self._n, n_live

    def _ensure_structure(self) -> None:
        """Train or retrain a lazily built IVF structure if needed (takes the write lock)."""
        if not self._ivf_needs_training():
            return
        with self._lock.write():
            if self._ivf_needs_training():
                self._train_ivf()

    # ------------------------------------------------------------------ search

    def search(
        self, queries: ArrayLike, k: int, *, mask: NDArray[np.bool_] | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Top-``k`` slots by inner product (cosine when ``normalize=True``) for each query.

        Args:
            queries: Shape ``(q, dim)`` or ``(dim,)``.
            k: Number of results per query (>= 1).
            mask: Optional boolean array over slots, True = allowed. It may be shorter than
                :attr:`n_slots` (slots added after it was built are then not allowed).

        Returns:
            ``(slots, scores)``, both of shape ``(q, k)``, best first (ties by lower slot for
            exact search). Rows are padded with slot -1 and score ``-inf`` when fewer than ``k``
            live, allowed vectors exist. Removed slots are never returned.

        Raises:
            ValueError: Bad query shape/dimension/values, ``k < 1`` or a mask longer than
                :attr:`n_slots`.
            TypeError: Non-numeric queries, non-int ``k`` or non-boolean mask.

        Example:
            >>> index = DenseIndex(2, kind="flat")
            >>> _ = index.add([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
            >>> slots, scores = index.search([[1.0, 0.0], [0.0, 1.0]], k=2)
            >>> slots
            array([[0, 1],
                   [2, 1]])
            >>> scores.round(4)
            array([[1. , 0.6],
                   [1. , 0.8]])

        """
        k = _check_int(k, "k", 1)
        query_matrix = self._as_matrix(queries, "queries", allow_1d=True)
        mask_arr = None if mask is None else self._as_mask(mask)
        self._ensure_structure()
        with self._lock.read():
            n = self._n
            if mask_arr is not None and mask_arr.shape[0] > n:
                raise ValueError(
                    f"mask has length {mask_arr.shape[0]}, but the index has only {n} slots "
                    "(the mask must have at most n_slots entries)"
                )
            allowed, n_allowed = self._allowed(mask_arr, n)
            q = query_matrix.shape[0]
            out_slots = np.full((q, k), -1, dtype=np.int64)
            out_scores = np.full((q, k), -np.inf, dtype=np.float64)
            if q == 0 or n_allowed == 0:
                return out_slots, out_scores
            use_faiss = self._faiss is not None and self._faiss_n == n
            if use_faiss and allowed is not None:
                use_faiss = (
                    n_allowed > _EXACT_FILTER_MAX_ALLOWED
                    and n_allowed >= _EXACT_FILTER_MAX_FRACTION * n
                )
            if use_faiss:
                self._search_faiss(query_matrix, k, allowed, n_allowed, n, out_slots, out_scores)
            else:
                self._search_exact(query_matrix, k, allowed, n_allowed, n, out_slots, out_scores)
            return out_slots, out_scores

    @staticmethod
    def _as_mask(mask: ArrayLike) -> NDArray[np.bool_]:
        arr = np.asarray(mask)
        if arr.dtype != np.bool_:
            raise TypeError(f"mask must be a boolean array over slots, got dtype {arr.dtype}")
        if arr.ndim != 1:
            raise ValueError(f"mask must be 1-D (one entry per slot), got shape {arr.shape}")
        return arr

    def _allowed(
        self, mask: NDArray[np.bool_] | None, n: int
    ) -> tuple[NDArray[np.bool_] | None, int]:
        """Allowed-slot mask over [0, n) (None = all allowed) and its count."""
        if mask is None:
            if self._n_live == n:
                return None, n
            allowed = self._live[:n]
        else:
            allowed = np.zeros(n, dtype=np.bool_)
            allowed[: mask.shape[0]] = mask
            allowed &= self._live[:n]
        return allowed, int(np.count_nonzero(allowed))

    def _search_exact(
        self,
        queries: NDArray[np.float32],
        k: int,
        allowed: NDArray[np.bool_] | None,
        n_allowed: int,
        n: int,
        out_slots: NDArray[np.int64],
        out_scores: NDArray[np.float64],
        rows: NDArray[np.int64] | None = None,
    ) -> None:
        """Brute-force top-k into ``out_*`` (rows ``rows`` of them, default all)."""
        ids: NDArray[np.int64] | None = None
        excluded: NDArray[np.bool_] | None = None
        if allowed is None:
            base = self._vectors[:n]
        elif n_allowed < _GATHER_FRACTION * n:
            ids = np.flatnonzero(allowed)
            base = np.take(self._vectors, ids, axis=0)
        else:
            base = self._vectors[:n]
            excluded = ~allowed
        m = base.shape[0]
        kk = min(k, n_allowed)
        row_index = np.arange(queries.shape[0]) if rows is None else rows
        chunk = max(1, _EXACT_CHUNK_SCORES // max(m, 1))
        for start in range(0, row_index.shape[0], chunk):
            chunk_rows = row_index[start : start + chunk]
            if chunk_rows.shape[0] == 1:
                # One query: a memory-bound matrix-vector product. numpy's einsum loop is as fast
                # as single-threaded BLAS and never waits on BLAS worker threads, which costs
                # 10-30 ms per call when the CPU is busy (measured on 2 cores).
                scores = np.einsum("ij,j->i", base, queries[chunk_rows[0]])[None, :]
            else:
                scores = queries[chunk_rows] @ base.T
            if excluded is not None:
                scores[:, excluded] = -np.inf
            if kk < m:
                top = np.argpartition(scores, m - kk, axis=1)[:, m - kk :]
                # argpartition splits ties at the k-th score arbitrarily: redo the (rare) rows
                # with such ties so that equal scores always go to the lower slot.
                kth = np.take_along_axis(scores, top[:, :1], axis=1)
                for r in np.flatnonzero(np.count_nonzero(scores == kth, axis=1) > 1):
                    candidates = np.flatnonzero(scores[r] >= kth[r, 0])
                    keep = np.lexsort((candidates, -scores[r, candidates]))[:kk]
                    top[r] = candidates[keep]
            else:
                top = np.broadcast_to(np.arange(m), scores.shape)
            top_scores = np.take_along_axis(scores, top, axis=1)
            order = np.lexsort((top, -top_scores), axis=1)
            top = np.take_along_axis(top, order, axis=1)
            top_scores = np.take_along_axis(top_scores, order, axis=1)
            out_slots[chunk_rows, :kk] = top if ids is None else ids[top]
            out_scores[chunk_rows, :kk] = top_scores

    def _search_faiss(
        self,
        queries: NDArray[np.float32],
        k: int,
        allowed: NDArray[np.bool_] | None,
        n_allowed: int,
        n: int,
        out_slots: NDArray[np.int64],
        out_scores: NDArray[np.float64],
    ) -> None:
        """Approximate top-k through FAISS, with an exact fallback for rows that fall short."""
        selector = None
        bits = None
        if allowed is not None:
            bits = np.packbits(allowed, bitorder="little")
            selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits))
        if self._active_kind == "hnsw":
            ef = max(self.ef_search, k)
            if allowed is not None:  # a filtered walk needs a wider beam to find k members
                ef = max(ef, min(_MAX_FILTERED_EF, math.ceil(ef * n / n_allowed)))
            params: Any = faiss.SearchParametersHNSW(efSearch=ef)
        else:
            params = faiss.SearchParametersIVF(nprobe=min(self.nprobe, self._faiss.nlist))
        if selector is not None:
            params.sel = selector
        scores, slots = self._faiss.search(queries, k, params=params)
        del bits  # only now may the bitmap be released
        found = slots >= 0
        out_slots[:] = np.where(found, slots, -1)
        out_scores[:] = np.where(found, scores.astype(np.float64), -np.inf)
        short = np.flatnonzero(found.sum(axis=1) < min(k, n_allowed))
        if short.size:
            self._search_exact(queries, k, allowed, n_allowed, n, out_slots, out_scores, rows=short)

    # ------------------------------------------------------------------ exact access

    def score(self, query: ArrayLike, slots: ArrayLike) -> NDArray[np.float64]:
        """Exact inner product of one query with the stored vectors of ``slots``.

        Args:
            query: Shape ``(dim,)`` (or ``(1, dim)``); normalized when ``normalize=True``.
            slots: Live slots (any order, duplicates allowed).

        Returns:
            float64 scores aligned with ``slots`` (cosine when ``normalize=True``).

        Raises:
            KeyError: A slot that does not exist or was removed.

        Example:
            >>> index = DenseIndex(2)
            >>> _ = index.add([[1.0, 0.0], [0.0, 1.0]])
            >>> index.score([1.0, 1.0], [1, 0]).round(4)
            array([0.7071, 0.7071])

        """
        query_matrix = self._as_matrix(query, "query", allow_1d=True)
        if query_matrix.shape[0] != 1:
            raise ValueError(
                f"query must be a single vector of shape ({self.dim},), got "
                f"{query_matrix.shape[0]} vectors"
            )
        with self._lock.read():
            checked = self._as_slots(slots)
            rows = self._vectors[checked].astype(np.float64)
        result: NDArray[np.float64] = rows @ query_matrix[0].astype(np.float64)
        return result

    def get_vectors(self, slots: ArrayLike) -> NDArray[np.float32]:
        """Return copies of the stored vectors of ``slots`` (unit length if ``normalize=True``).

        Raises:
            KeyError: A slot that does not exist or was removed.

        Example:
            >>> index = DenseIndex(2, normalize=False)
            >>> _ = index.add([[1.0, 2.0], [3.0, 4.0]])
            >>> index.get_vectors([1])
            array([[3., 4.]], dtype=float32)

        """
        with self._lock.read():
            checked = self._as_slots(slots)
            return np.array(self._vectors[checked], dtype=np.float32)

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> None:
        """Write the index into ``path``, an existing empty directory (no pickle).

        Files: ``live.npy``, ``faiss.index`` (HNSW/IVF structure via ``faiss.write_index``, so
        loading needs no rebuild), ``dense_index.json`` (parameters) and ``vectors.npy`` (all
        slots, float32), except for HNSW, whose file already holds the vectors.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            NotADirectoryError: ``path`` is not a directory.
            FileExistsError: ``path`` is not empty.

        Example:
            >>> import tempfile
            >>> index = DenseIndex(2)
            >>> _ = index.add([[1.0, 0.0], [0.0, 1.0]])
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     index.save(tmp)
            ...     DenseIndex.load(tmp).search([1.0, 0.1], k=1)[0]
            array([[0]])

        """
        directory = Path(path)
        if not directory.exists():
            raise FileNotFoundError(f"path {str(directory)!r} does not exist; create it first")
        if not directory.is_dir():
            raise NotADirectoryError(f"path {str(directory)!r} is not a directory")
        if any(directory.iterdir()):
            raise FileExistsError(f"path {str(directory)!r} must be an empty directory")
        self._ensure_structure()
        with self._lock.read():
            n = self._n
            has_faiss = self._faiss is not None
            # HNSW's flat storage holds exactly the vectors of slots [0, n) (it never lags).
            vectors_in_faiss = has_faiss and self._active_kind == "hnsw" and self._faiss_n == n
            if not vectors_in_faiss:
                np.save(directory / _VECTORS_FILE, self._vectors[:n], allow_pickle=False)
            np.save(directory / _LIVE_FILE, self._live[:n], allow_pickle=False)
            if has_faiss:
                faiss.write_index(self._faiss, str(directory / _FAISS_FILE))
            params = {
                "format_version": _FORMAT_VERSION,
                "dim": self.dim,
                "kind": self.kind,
                "active_kind": self._active_kind,
                "normalize": self.normalize,
                "hnsw_m": self.hnsw_m,
                "ef_construction": self.ef_construction,
                "ef_search": self.ef_search,
                "nlist": self.nlist,
                "nprobe": self.nprobe,
                "hnsw_threshold": self.hnsw_threshold,
                "n_slots": n,
                "n_live": self._n_live,
                "faiss_index": has_faiss,
                "vectors_in_faiss": vectors_in_faiss,
                "ivf_trained_live": self._ivf_trained_live,
            }
            (directory / _PARAMS_FILE).write_text(json.dumps(params, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = True) -> DenseIndex:
        """Load an index written by :meth:`save`.

        Args:
            path: The directory given to :meth:`save`.
            mmap: Memory-map ``vectors.npy`` and the vectors inside the HNSW file read-only
                instead of reading them into memory (a 1M-vector HNSW index opens in
                milliseconds instead of about a second). The index still accepts
                :meth:`add`/:meth:`remove`: the first add copies the vectors and the HNSW
                structure into memory (copy-on-write); the files are never modified.

        Raises:
            FileNotFoundError: A file is missing.
            ValueError: The files are inconsistent or from an unknown format version.

        Example:
            >>> import tempfile
            >>> index = DenseIndex(2, kind="hnsw")
            >>> _ = index.add([[1.0, 0.0], [0.0, 1.0]])
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     index.save(tmp)
            ...     loaded = DenseIndex.load(tmp, mmap=False)
            >>> loaded.active_kind, loaded.n_live
            ('hnsw', 2)

        """
        directory = Path(path)
        params_path = directory / _PARAMS_FILE
        if not params_path.is_file():
            raise FileNotFoundError(f"{str(params_path)!r} not found: not a saved DenseIndex")
        params = json.loads(params_path.read_text(encoding="utf-8"))
        if params.get("format_version") not in _READABLE_FORMAT_VERSIONS:
            raise ValueError(
                f"{str(params_path)!r} has format_version {params.get('format_version')!r}, "
                f"this version reads {' and '.join(map(str, _READABLE_FORMAT_VERSIONS))}"
            )
        index = cls(
            params["dim"],
            kind=params["kind"],
            normalize=params["normalize"],
            hnsw_m=params["hnsw_m"],
            ef_construction=params["ef_construction"],
            ef_search=params["ef_search"],
            nlist=params["nlist"],
            nprobe=params["nprobe"],
            hnsw_threshold=params["hnsw_threshold"],
        )
        n = int(params["n_slots"])
        vectors_in_faiss = bool(params.get("vectors_in_faiss", False))
        live = np.load(directory / _LIVE_FILE)
        if live.dtype != np.bool_ or live.shape != (n,):
            raise ValueError(f"{_LIVE_FILE} holds {live.dtype} {live.shape}, expected bool ({n},)")
        faiss_index = None
        mapped = mmap and params["active_kind"] == "hnsw"
        if params["faiss_index"]:
            flags = faiss.IO_FLAG_MMAP_IFC if mapped else 0  # IFC: the flat vector storage
            faiss_index = faiss.read_index(str(directory / _FAISS_FILE), flags)
            if faiss_index.ntotal != n or faiss_index.d != index.dim:
                raise ValueError(
                    f"{_FAISS_FILE} holds {faiss_index.ntotal} vectors of dimension "
                    f"{faiss_index.d}, expected {n} of dimension {index.dim}"
                )
        if vectors_in_faiss and faiss_index is not None:
            vectors = _storage_view(faiss_index, n, index.dim)
            index._vectors_owner = faiss_index
        else:
            vectors = np.load(directory / _VECTORS_FILE, mmap_mode="r" if mmap else None)
        if vectors.dtype != np.float32 or vectors.shape != (n, index.dim):
            raise ValueError(
                f"{_VECTORS_FILE} holds {vectors.dtype} {vectors.shape}, expected float32 "
                f"({n}, {index.dim})"
            )
        index._vectors = vectors
        index._live = np.array(live, dtype=np.bool_)
        index._n = n
        index._n_live = int(np.count_nonzero(index._live))
        index._active_kind = params["active_kind"]
        index._faiss = faiss_index
        index._mapped_faiss = faiss_index if mapped else None
        index._faiss_n = n if faiss_index is not None else 0
        index._ivf_trained_live = int(params["ivf_trained_live"])
        if index._active_kind == "hnsw" and faiss_index is None:  # hnsw never lags; be safe
            index._faiss = index._new_hnsw()
            index._sync_structure()
        return index


def _storage_view(hnsw: Any, n: int, dim: int) -> NDArray[np.float32]:
    """Return a read-only ``(n, dim)`` view of an ``IndexHNSWFlat``'s stored vectors (no copy).

    The view is valid while ``hnsw`` is alive and not added to: the caller keeps a reference and
    replaces the view before any add (``DenseIndex._reserve`` copies read-only buffers).
    """
    raw = getattr(hnsw, "storage", None)
    storage = faiss.downcast_index(raw) if raw is not None else None
    if storage is None or not hasattr(storage, "get_xb"):
        raise ValueError(f"{_FAISS_FILE} is not an HNSW index with flat vector storage")
    if n == 0:
        return np.empty((0, dim), dtype=np.float32)
    view = faiss.rev_swig_ptr(storage.get_xb(), n * dim).reshape(n, dim)
    view.flags.writeable = False
    return cast("NDArray[np.float32]", view)
