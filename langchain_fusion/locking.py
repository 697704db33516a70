"""A reader-writer lock: many concurrent searches, or one write.

The one lock of the package's stores (it used to exist twice, in ``HybridIndex`` and in
``BM25Retriever``); see [`ReadWriteLock`][].
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ReadWriteLock"]


class ReadWriteLock:
    """Many readers or one writer; writers are preferred; re-entrant within a thread.

    A thread holding the read lock may take it again (without waiting for queued writers, so
    nested reads never deadlock); a thread holding the write lock may take either lock again.
    Upgrading a read lock to a write lock is refused (it would deadlock).

    One lock guards one [`Collection`][langchain_fusion.collection.Collection]: every face
    over it (a ``HybridIndex``, a ``BM25Retriever`` and its ``model_copy()`` views) takes it.

    Example:
        >>> lock = ReadWriteLock()
        >>> with lock.read(), lock.read():  # re-entrant
        ...     pass
        >>> with lock.write(), lock.read():  # a writer may read
        ...     pass
        >>> with lock.read(), lock.write():  # doctest: +ELLIPSIS
        ...     pass
        Traceback (most recent call last):
        ...
        RuntimeError: cannot modify the index while this thread is reading it ...

    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None
        self._write_depth = 0
        self._waiting_writers = 0
        self._local = threading.local()

    def _read_depth(self) -> int:
        depth: int = getattr(self._local, "depth", 0)
        return depth

    @contextmanager
    def read(self) -> Iterator[None]:
        """Hold the lock for reading (shared with other readers)."""
        depth = self._read_depth()
        if depth or self._writer == threading.get_ident():
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth = depth
            return
        with self._cond:
            while self._writer is not None or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        self._local.depth = 1
        try:
            yield
        finally:
            self._local.depth = 0
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        """Hold the lock for writing (exclusive; waits for the readers to finish)."""
        me = threading.get_ident()
        if self._writer == me:
            self._write_depth += 1
            try:
                yield
            finally:
                self._write_depth -= 1
            return
        if self._read_depth():
            raise RuntimeError(
                "cannot modify the index while this thread is reading it (for example from a "
                "filter callable); finish the read first"
            )
        with self._cond:
            self._waiting_writers += 1
            try:
                while self._writer is not None or self._readers:
                    self._cond.wait()
            finally:
                self._waiting_writers -= 1
            self._writer = me
            self._write_depth = 1
        try:
            yield
        finally:
            with self._cond:
                self._writer = None
                self._write_depth = 0
                self._cond.notify_all()
