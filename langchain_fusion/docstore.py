"""``DocStore``: the ids, texts and metadata of a [`HybridIndex`][], per slot.

The store is columnar and slot-addressed like the two engines beside it: slot ``i`` holds one
document's id, text and metadata, slots are appended and tombstoned, never reused (until
[`DocStore.compact`][]). No ``Document`` object is kept per chunk: a column is a Python list of
values, and a column loaded from disk stays in its file (memory-mapped JSON Lines plus an offsets
array) and is decoded one value at a time, on demand. So a loaded million-chunk index costs almost
no memory for its texts until they are read, and opening it does not parse them.

On disk (one directory), every value is JSON, one per line, and the offsets are ``.npy``:

* ``ids.jsonl``, ``texts.jsonl``, ``metadata.jsonl``: one JSON value per slot and line.
* ``ids.offsets.npy`` etc.: int64 byte offsets, ``n_slots + 1`` of them (line ``i`` is
  ``bytes[offsets[i]:offsets[i+1]]``).
* ``live.npy``: which slots are live.

Nothing is pickled. Metadata must be JSON-serialisable at save time (numpy scalars are converted to
Python numbers; keys must be strings; tuples come back as lists; NaN and infinities use Python's
``NaN``/``Infinity`` JSON extension).

Not thread-safe by itself: [`HybridIndex`][] serialises writers and lets
readers in under its own lock (lazy decoding is guarded internally, so concurrent readers are fine).
"""

from __future__ import annotations

import copy
import json
import mmap
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_METADATA_DEPTH", "DocStore", "check_metadata", "copy_metadata"]

_NEWLINE = 10
_COLUMNS = ("ids", "texts", "metadata")
_LIVE_FILE = "live.npy"

_EMPTY: Mapping[str, Any] = {}


_IMMUTABLE_TYPES = frozenset({str, int, float, bool, complex, bytes, type(None)})
_FAST_COPY_DEPTH = 16  # deeper (or cyclic) values go through copy.deepcopy


def _copy_value(value: Any, depth: int = 0) -> Any:
    """Deep-copy a metadata value.

    JSON-like containers are copied by hand (a few times faster than ``copy.deepcopy``), anything
    else (or deeper than ``_FAST_COPY_DEPTH``, so cycles end) with ``copy.deepcopy``; a value it
    cannot copy is shared.
    """
    kind = type(value)
    if kind in _IMMUTABLE_TYPES:
        return value
    if depth < _FAST_COPY_DEPTH:
        if kind is list:
            return [_copy_value(v, depth + 1) for v in value]
        if kind is dict:
            return {k: _copy_value(v, depth + 1) for k, v in value.items()}
        if kind is tuple:
            return tuple([_copy_value(v, depth + 1) for v in value])
    try:
        return copy.deepcopy(value)
    except Exception:  # a lock, a connection...: share it rather than fail
        return value


def copy_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Copy metadata so that no container is shared with the original, at any depth.

    Immutable scalars are kept as they are (the common case, free), lists, dicts and tuples are
    copied recursively, other values deep-copied; a value that cannot be deep-copied (a lock, a
    connection...) is shared. Stored and returned documents use it, so a caller that edits
    ``doc.metadata["tags"]`` changes only its own copy.

    Example:
        >>> meta = {"page": 2, "tags": ["a"]}
        >>> copied = copy_metadata(meta)
        >>> copied["tags"].append("b")
        >>> meta
        {'page': 2, 'tags': ['a']}

    """
    return {key: _copy_value(value) for key, value in metadata.items()}


MAX_METADATA_DEPTH = 64
"""Deepest nesting of dicts and lists accepted in metadata."""


def check_metadata(metadata: Mapping[str, Any], where: str = "metadata") -> None:
    """Refuse metadata a store cannot keep faithfully, naming the path of the bad key.

    A key that is not a ``str`` (JSON would save ``{1: "x"}`` as ``{"1": "x"}``, so the loaded
    index would differ), a dict or list that contains itself (it cannot be saved at all), and
    nesting deeper than [`MAX_METADATA_DEPTH`][] are refused when documents are added, with a
    one-line ``ValueError``.

    Args:
        metadata: The metadata of one document.
        where: How the message names it (``"metadatas[3]"``).

    Raises:
        ValueError: The first problem found, with its path (``metadatas[3]['a'][0]``).

    Example:
        >>> check_metadata({"page": 1, "tags": ["a"]})
        >>> check_metadata({"pages": {1: "intro"}}, "metadatas[0]")
        Traceback (most recent call last):
        ...
        ValueError: metadatas[0]['pages'] has a key of type int (1); metadata keys must be str: use str(key)
        >>> loop = {"a": 1}; loop["self"] = loop
        >>> check_metadata(loop)
        Traceback (most recent call last):
        ...
        ValueError: metadata['self'] refers back to a dict that contains it (self-referencing metadata cannot be saved); store a copy without the cycle

    """  # noqa: E501
    _check_value(metadata, where, 0, set())


def _check_value(value: Any, path: str, depth: int, active: set[int]) -> None:
    kind = type(value)
    if kind in _IMMUTABLE_TYPES:
        return
    if isinstance(value, Mapping):
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return
    if id(value) in active:
        container = "dict" if isinstance(value, Mapping) else "list"
        raise ValueError(
            f"{path} refers back to a {container} that contains it (self-referencing metadata "
            "cannot be saved); store a copy without the cycle"
        )
    if depth >= MAX_METADATA_DEPTH:
        raise ValueError(
            f"{path} is nested more than {MAX_METADATA_DEPTH} levels deep; flatten the metadata"
        )
    active.add(id(value))
    is_map = isinstance(value, Mapping)
    for key, item in items:
        if is_map and not isinstance(key, str):
            raise ValueError(
                f"{path} has a key of type {type(key).__name__} ({key!r:.40}); metadata keys "
                "must be str: use str(key)"
            )
        if type(item) not in _IMMUTABLE_TYPES:
            _check_value(item, f"{path}[{key!r:.40}]", depth + 1, active)
    active.discard(id(value))


def _open_blob(path: Path, *, use_mmap: bool) -> bytes | mmap.mmap:
    """Return the bytes of ``path``: memory-mapped read-only, or read into memory."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        if not use_mmap or size == 0:  # an empty file cannot be mapped
            f.seek(0)
            return f.read()
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


class _Column:
    """One per-slot column: a frozen, file-backed prefix (JSON Lines) plus an in-memory tail."""

    __slots__ = ("_blob", "_frozen", "_lock", "_n_frozen", "_offsets", "_tail")

    def __init__(
        self,
        blob: bytes | mmap.mmap = b"",
        offsets: NDArray[np.int64] | None = None,
    ) -> None:
        self._blob = blob
        self._offsets = np.zeros(1, dtype=np.int64) if offsets is None else offsets
        self._n_frozen = len(self._offsets) - 1
        self._frozen: list[Any] | None = None if self._n_frozen else []
        self._tail: list[Any] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._n_frozen + len(self._tail)

    def get(self, i: int) -> Any:
        n_frozen = self._n_frozen
        if i >= n_frozen:
            return self._tail[i - n_frozen]
        frozen = self._frozen
        if frozen is not None:
            return frozen[i]
        start, stop = int(self._offsets[i]), int(self._offsets[i + 1])
        return json.loads(self._blob[start:stop])

    def values(self) -> list[Any]:
        """All values as one list (decodes and keeps the frozen prefix in memory, once)."""
        return self.frozen_values() + self._tail

    def frozen_values(self) -> list[Any]:
        frozen = self._frozen
        if frozen is None:
            with self._lock:
                frozen = self._frozen
                if frozen is None:
                    # JSON Lines never contain a raw newline inside a value, so the whole prefix
                    # parses as one JSON array in a single C call.
                    end = int(self._offsets[-1])
                    body = bytes(self._blob[: max(end - 1, 0)]).replace(b"\n", b",")
                    frozen = json.loads(b"[" + body + b"]")
                    self._frozen = frozen
        return frozen

    def extend(self, values: Iterable[Any]) -> None:
        self._tail.extend(values)

    def truncate(self, n: int) -> None:
        """Drop tail values beyond length ``n`` (undo of an ``extend``)."""
        if n < self._n_frozen:
            raise ValueError("cannot truncate into the frozen prefix")
        del self._tail[n - self._n_frozen :]

    def clear(self, i: int, value: Any) -> None:
        """Replace the value of a removed slot by a cheap placeholder (frees its memory)."""
        if i >= self._n_frozen:
            self._tail[i - self._n_frozen] = value

    def write(
        self,
        directory: Path,
        name: str,
        encode: Callable[[int, Any], str],
        live: NDArray[np.bool_],
        placeholder: str,
    ) -> None:
        """Write ``<name>.jsonl`` and ``<name>.offsets.npy``.

        Live lines of the frozen prefix are copied byte for byte, removed ones become
        ``placeholder`` (so deleted texts do not survive a save); tail values are encoded with
        ``encode(slot, value) -> str`` (one JSON document without raw newlines).
        """
        n_frozen = self._n_frozen
        lines = [encode(n_frozen + j, v) for j, v in enumerate(self._tail)]
        text = "\n".join(lines) + "\n" if lines else ""
        try:
            tail = text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates (bad PDF extraction): escape them
            tail = "".join(
                json.dumps(json.loads(line), ensure_ascii=True) + "\n" for line in lines
            ).encode("ascii")
        old = np.asarray(self._offsets, dtype=np.int64)
        dead = ~np.asarray(live[:n_frozen], dtype=np.bool_)
        filler = (placeholder + "\n").encode("utf-8")
        lengths = np.diff(old)
        lengths[dead] = len(filler)
        frozen_offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        with open(directory / f"{name}.jsonl", "wb") as f:
            # runs of consecutive live / removed slots in the frozen prefix
            bounds = np.flatnonzero(np.diff(dead.astype(np.int8))) + 1
            for a, b in zip([0, *bounds.tolist()], [*bounds.tolist(), n_frozen], strict=True):
                if a == b:
                    continue
                if dead[a]:
                    f.write(filler * (b - a))
                else:
                    f.write(self._blob[int(old[a]) : int(old[b])])
            f.write(tail)
        frozen_end = int(frozen_offsets[-1])
        tail_arr = np.frombuffer(tail, dtype=np.uint8)
        ends = np.flatnonzero(tail_arr == _NEWLINE).astype(np.int64) + (frozen_end + 1)
        offsets = np.concatenate([frozen_offsets, ends])
        np.save(directory / f"{name}.offsets.npy", offsets, allow_pickle=False)

    @classmethod
    def read(cls, directory: Path, name: str, n: int, *, use_mmap: bool) -> _Column:
        offsets = np.load(directory / f"{name}.offsets.npy", mmap_mode="r" if use_mmap else None)
        blob = _open_blob(directory / f"{name}.jsonl", use_mmap=use_mmap)
        if offsets.dtype != np.int64 or offsets.shape != (n + 1,):
            raise ValueError(
                f"{name}.offsets.npy holds {offsets.dtype} {offsets.shape}, expected int64 "
                f"({n + 1},): the directory is inconsistent"
            )
        if int(offsets[0]) != 0 or int(offsets[-1]) != len(blob):
            raise ValueError(
                f"{name}.offsets.npy does not match the {len(blob)} bytes of {name}.jsonl"
            )
        return cls(blob, offsets)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):  # numpy scalars: np.int64(3) -> 3
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _find_unserialisable(value: Any, path: str) -> tuple[str, str] | None:
    """Locate the first value under ``value`` that JSON cannot encode: ``(path, reason)``."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path}[{key!r}]", f"a key of type {type(key).__name__} (keys must be str)"
            found = _find_unserialisable(item, f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _find_unserialisable(item, f"{path}[{i}]")
            if found:
                return found
        return None
    try:
        json.dumps(value, default=_json_default)
    except (TypeError, ValueError):
        return path, f"a value of type {type(value).__name__}: {value!r:.80}"
    return None


class DocStore:
    """Per-slot ids, texts and metadata, with an id -> slot map and tombstones.

    Slots are assigned consecutively by [`append`][] and never reused; [`remove`][]
    tombstones them (and frees their text and metadata). Metadata dicts are copied (shallowly) on
    the way in and on the way out, so callers can never change what is stored.

    Example:
        >>> store = DocStore()
        >>> store.append(["a", "b"], ["first text", "second text"], [{"page": 1}, None])
        array([0, 1])
        >>> store.slots_of(["b", "zzz"])
        array([ 1, -1])
        >>> store.remove([0])
        >>> store.n_live, store.n_slots, store.text(1), store.metadata(1), "a" in store
        (1, 2, 'second text', {}, False)

    """

    def __init__(self) -> None:
        self._ids = _Column()
        self._texts = _Column()
        self._metas = _Column()
        self._live: NDArray[np.bool_] = np.zeros(0, dtype=np.bool_)
        self._n = 0
        self._n_live = 0
        self._slot_map: dict[str, int] | None = {}
        self._map_lock = threading.Lock()

    # ------------------------------------------------------------------ size and liveness

    @property
    def n_slots(self) -> int:
        """Number of slots ever assigned, including removed ones.

        Example:
            >>> DocStore().n_slots
            0

        """
        return self._n

    @property
    def n_live(self) -> int:
        """Number of live documents.

        Example:
            >>> store = DocStore(); _ = store.append(["x"], ["t"], [None])
            >>> store.n_live
            1

        """
        return self._n_live

    @property
    def live_mask(self) -> NDArray[np.bool_]:
        """Read-only view of the liveness of every slot (True = live).

        Example:
            >>> store = DocStore(); _ = store.append(["x", "y"], ["t", "u"], [None, None])
            >>> store.remove([0]); store.live_mask
            array([False,  True])

        """
        view: NDArray[np.bool_] = self._live[: self._n].view()
        view.flags.writeable = False
        return view

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and doc_id in self._map()

    # ------------------------------------------------------------------ id <-> slot

    def _map(self) -> dict[str, int]:
        """Return the id -> live slot dict, building it on first use after a load."""
        slot_map = self._slot_map
        if slot_map is None:
            with self._map_lock:
                slot_map = self._slot_map
                if slot_map is None:
                    ids = self._ids.values()
                    live = np.flatnonzero(self._live[: self._n]).tolist()
                    slot_map = {ids[s]: s for s in live}
                    self._slot_map = slot_map
        return slot_map

    def slots_of(self, ids: Sequence[str]) -> NDArray[np.int64]:
        """Return the live slot of each id, -1 for an unknown (or deleted) id.

        Example:
            >>> store = DocStore(); _ = store.append(["x"], ["t"], [None])
            >>> store.slots_of(["x", "y"]).tolist()
            [0, -1]

        """
        get = self._map().get
        return np.fromiter((get(i, -1) for i in ids), dtype=np.int64, count=len(ids))

    def id(self, slot: int) -> str:
        """Return the id stored in ``slot``.

        Example:
            >>> store = DocStore(); _ = store.append(["x"], ["t"], [None])
            >>> store.id(0)
            'x'

        """
        value: str = self._ids.get(slot)
        return value

    def ids_of(self, slots: Iterable[int]) -> list[str]:
        """Return the ids stored in ``slots``.

        Example:
            >>> store = DocStore(); _ = store.append(["x", "y"], ["t", "u"], [None, None])
            >>> store.ids_of([1, 0])
            ['y', 'x']

        """
        get = self._ids.get
        return [get(s) for s in slots]

    def live_ids(self) -> list[str]:
        """Return the ids of all live documents, in slot (insertion) order.

        Example:
            >>> store = DocStore(); _ = store.append(["x", "y"], ["t", "u"], [None, None])
            >>> store.remove([0]); store.live_ids()
            ['y']

        """
        ids = self._ids.values()
        return [ids[s] for s in np.flatnonzero(self._live[: self._n]).tolist()]

    # ------------------------------------------------------------------ values

    def text(self, slot: int) -> str:
        """Return the text stored in ``slot``.

        Example:
            >>> store = DocStore(); _ = store.append(["x"], ["hello"], [None])
            >>> store.text(0)
            'hello'

        """
        value: str = self._texts.get(slot)
        return value

    def metadata(self, slot: int) -> dict[str, Any]:
        """Return a fresh copy of the metadata stored in ``slot`` (nested values copied too).

        Example:
            >>> store = DocStore(); _ = store.append(["x"], ["t"], [{"page": 2}])
            >>> store.metadata(0)
            {'page': 2}

        """
        value = self._metas.get(slot)
        return copy_metadata(value) if value else {}

    def metadata_view(self, slot: int) -> Mapping[str, Any]:
        """Return the stored metadata of ``slot`` itself, without a copy (do not modify it).

        Example:
            >>> store = DocStore(); _ = store.append(["x"], ["t"], [None])
            >>> dict(store.metadata_view(0))
            {}

        """
        value = self._metas.get(slot)
        return value if value else _EMPTY

    def match(self, predicate: Callable[[Mapping[str, Any]], bool]) -> NDArray[np.bool_]:
        """Evaluate a metadata predicate on every live slot.

        Returns:
            A boolean array over all slots: True where the slot is live and matches.

        Example:
            >>> store = DocStore()
            >>> _ = store.append(["x", "y"], ["t", "u"], [{"p": 1}, {"p": 2}])
            >>> store.match(lambda m: m.get("p") == 2)
            array([False,  True])

        """
        n = self._n
        out = np.zeros(n, dtype=np.bool_)
        metas = self._metas.values()
        for slot in np.flatnonzero(self._live[:n]).tolist():
            meta = metas[slot]
            if predicate(meta if meta else _EMPTY):
                out[slot] = True
        return out

    # ------------------------------------------------------------------ mutation

    def append(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, Any] | None],
        *,
        replace: Sequence[int] = (),
    ) -> NDArray[np.int64]:
        """Append documents in new, consecutive slots, optionally tombstoning others.

        Metadata is copied shallowly; empty metadata is stored as ``None`` (no dict at all).
        Everything is checked before anything changes.

        Args:
            ids: Distinct ids, not live in the store unless their slot is in ``replace``.
            texts: One text per id.
            metadatas: One mapping (or ``None``) per id.
            replace: Live slots to tombstone in the same step (an upsert's previous versions).

        Returns:
            The new slots.

        Raises:
            ValueError: An id is repeated, or live and not replaced; nothing changes then.
            KeyError: A ``replace`` slot is not live.

        Example:
            >>> store = DocStore()
            >>> store.append(["x"], ["old"], [None]).tolist()
            [0]
            >>> store.append(["x"], ["new"], [None], replace=[0]).tolist()
            [1]
            >>> store.slots_of(["x"]).tolist(), store.n_live
            ([1], 1)

        """
        m = len(ids)
        if len(texts) != m or len(metadatas) != m:
            raise ValueError(
                f"ids, texts and metadatas must have the same length, got {m}, {len(texts)} "
                f"and {len(metadatas)}"
            )
        replaced = self._check_live(replace)
        slot_map = self._map()
        start = self._n
        new = {doc_id: start + j for j, doc_id in enumerate(ids)}
        if len(new) != m:
            raise ValueError("ids must be distinct")
        freed = {self._ids.get(s) for s in replaced}
        taken = [i for i in ids if i in slot_map and i not in freed]
        if taken:
            raise ValueError(f"ids are already present: {taken[:10]!r}")
        self._reserve(start + m)
        self._ids.extend(ids)
        self._texts.extend(texts)
        self._metas.extend(copy_metadata(meta) if meta else None for meta in metadatas)
        self._live[start : start + m] = True
        self._n = start + m
        self._n_live += m
        self._tombstone(replaced)
        if slot_map:
            slot_map.update(new)
        else:  # first add (or all deleted): no second dict of every id
            self._slot_map = new
        return np.arange(start, start + m, dtype=np.int64)

    def pad(self, m: int) -> None:
        """Append ``m`` removed (placeholder) slots, to stay aligned with the engines.

        Example:
            >>> store = DocStore(); store.pad(2); store.n_slots, store.n_live
            (2, 0)

        """
        self._reserve(self._n + m)
        for column, value in ((self._ids, ""), (self._texts, ""), (self._metas, None)):
            column.extend([value] * m)
        self._n += m

    def truncate(self, n_slots: int) -> None:
        """Undo the latest appends: drop every slot ``>= n_slots`` (all must be live).

        Example:
            >>> store = DocStore(); _ = store.append(["x", "y"], ["t", "u"], [None, None])
            >>> store.truncate(1); store.n_slots, "y" in store
            (1, False)

        """
        if not 0 <= n_slots <= self._n:
            raise ValueError(f"n_slots must be in [0, {self._n}], got {n_slots}")
        dropped = self.ids_of(range(n_slots, self._n))
        slot_map = self._map()
        for doc_id in dropped:
            slot_map.pop(doc_id, None)
        for column in (self._ids, self._texts, self._metas):
            column.truncate(n_slots)
        self._n_live -= int(np.count_nonzero(self._live[n_slots : self._n]))
        self._live[n_slots : self._n] = False
        self._n = n_slots

    def _reserve(self, capacity: int) -> None:
        if capacity > len(self._live):
            live = np.zeros(max(capacity, 2 * len(self._live), 16), dtype=np.bool_)
            live[: self._n] = self._live[: self._n]
            self._live = live

    def remove(self, slots: Iterable[int]) -> None:
        """Tombstone live slots and free their text and metadata.

        Raises:
            KeyError: A slot that does not exist or is already removed (nothing changes then).

        Example:
            >>> store = DocStore(); _ = store.append(["x"], ["t"], [None])
            >>> store.remove([0]); store.remove([0])
            Traceback (most recent call last):
            ...
            KeyError: 'slot 0 is not a live slot'

        """
        self._tombstone(self._check_live(slots))

    def _check_live(self, slots: Iterable[int]) -> list[int]:
        unique = sorted({int(s) for s in slots})
        for slot in unique:
            if not (0 <= slot < self._n and self._live[slot]):
                raise KeyError(f"slot {slot} is not a live slot")
        return unique

    def _tombstone(self, slots: list[int]) -> None:
        slot_map = self._map()
        for slot in slots:
            slot_map.pop(self._ids.get(slot), None)
            self._live[slot] = False
            self._ids.clear(slot, "")
            self._texts.clear(slot, "")
            self._metas.clear(slot, None)
        self._n_live -= len(slots)

    def compact(self, mapping: NDArray[np.int64]) -> None:
        """Renumber after the engines compacted: keep the live slots, in order.

        Args:
            mapping: ``mapping[old_slot]`` = new slot or -1, as returned by the engines'
                ``compact()``; it must drop exactly the removed slots.

        Example:
            >>> store = DocStore(); _ = store.append(["x", "y"], ["t", "u"], [None, None])
            >>> store.remove([0]); store.compact(np.array([-1, 0]))
            >>> store.n_slots, store.slots_of(["y"]).tolist()
            (1, [0])

        """
        live = self._live[: self._n]
        expected = np.where(live, np.cumsum(live) - 1, -1)
        if mapping.shape != expected.shape or not np.array_equal(mapping, expected):
            raise ValueError("mapping does not match the store's live slots")
        keep = np.flatnonzero(live).tolist()
        columns = []
        for column in (self._ids, self._texts, self._metas):
            values = [column.get(s) for s in keep]
            fresh = _Column()
            fresh.extend(values)
            columns.append(fresh)
        self._ids, self._texts, self._metas = columns
        self._n = self._n_live = len(keep)
        self._live = np.ones(self._n, dtype=np.bool_)
        ids = self._ids.values()
        self._slot_map = {doc_id: s for s, doc_id in enumerate(ids)}

    def copy(self) -> DocStore:
        """Return an independent in-memory copy (same slots; metadata copied deeply).

        Example:
            >>> store = DocStore(); _ = store.append(["x"], ["t"], [{"tags": ["a"]}])
            >>> clone = store.copy(); clone.remove([0])
            >>> store.n_live, clone.n_live
            (1, 0)

        """
        new = DocStore()
        for name in ("_ids", "_texts", "_metas"):
            column = _Column()
            values = getattr(self, name).values()
            if name == "_metas":
                values = [copy_metadata(v) if v else None for v in values]
            column.extend(values)
            setattr(new, name, column)
        new._live = self._live[: self._n].copy()
        new._n = self._n
        new._n_live = self._n_live
        new._slot_map = None
        return new

    # ------------------------------------------------------------------ persistence

    def _encode_metadata(self, slot: int, meta: Any) -> str:
        if not meta:
            return "{}"
        try:
            if not all(isinstance(k, str) for k in meta):
                raise TypeError("non-string key")
            return json.dumps(meta, ensure_ascii=False, default=_json_default)
        except (TypeError, ValueError) as exc:
            found = _find_unserialisable(meta, "")
            where, what = found if found else ("", str(exc))
            raise ValueError(
                f"metadata of document {self.id(slot)!r} cannot be saved as JSON: key {where} "
                f"holds {what}; metadata values must be str, int, float, bool, None, or lists "
                "and dicts (with str keys) of these"
            ) from exc

    def save(self, directory: str | Path) -> None:
        """Write the store into ``directory`` (which must exist).

        Raises:
            ValueError: Metadata that is not JSON-serialisable (names the document and key);
                detected before any file is written.

        Example:
            >>> import tempfile
            >>> store = DocStore(); _ = store.append(["x"], ["hi"], [{"p": 1}])
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     store.save(tmp)
            ...     DocStore.load(tmp, mmap=False).metadata(0)
            {'p': 1}

        """
        path = Path(directory)
        dumps = json.dumps
        live = self._live[: self._n]
        # Metadata first: a value JSON cannot encode fails before any file is written.
        self._metas.write(path, "metadata", self._encode_metadata, live, "{}")
        self._ids.write(path, "ids", lambda _s, v: dumps(v, ensure_ascii=False), live, '""')
        self._texts.write(path, "texts", lambda _s, v: dumps(v, ensure_ascii=False), live, '""')
        np.save(path / _LIVE_FILE, np.ascontiguousarray(self._live[: self._n]), allow_pickle=False)

    @classmethod
    def load(cls, directory: str | Path, *, mmap: bool = True) -> DocStore:
        """Open a store written by [`save`][].

        Args:
            directory: The directory.
            mmap: Memory-map the JSON Lines files (values are decoded on demand) instead of
                reading them into memory.

        Raises:
            ValueError: Inconsistent files.

        Example:
            >>> import tempfile
            >>> store = DocStore(); _ = store.append(["x", "y"], ["hi", "yo"], [None, None])
            >>> store.remove([0])
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     store.save(tmp)
            ...     loaded = DocStore.load(tmp, mmap=False)
            >>> loaded.live_ids(), loaded.text(1)
            (['y'], 'yo')

        """
        path = Path(directory)
        live = np.load(path / _LIVE_FILE, allow_pickle=False)
        if live.dtype != np.bool_ or live.ndim != 1:
            raise ValueError(f"{_LIVE_FILE} holds {live.dtype} {live.shape}, expected bool (n,)")
        n = live.shape[0]
        store = cls()
        store._ids = _Column.read(path, "ids", n, use_mmap=mmap)
        store._texts = _Column.read(path, "texts", n, use_mmap=mmap)
        store._metas = _Column.read(path, "metadata", n, use_mmap=mmap)
        store._live = np.array(live, dtype=np.bool_)
        store._n = n
        store._n_live = int(np.count_nonzero(live))
        store._slot_map = None  # built on first use
        return store
