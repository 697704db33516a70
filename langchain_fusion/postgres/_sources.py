"""Fusion sources over a `PostgresHybridStore`: its dense and BM25 sides.

Both sources of one store share the store's joint searcher (``Source.joint``): when a
[`FusionRetriever`][langchain_fusion.FusionRetriever] fuses exactly such sources, it asks the
joint searcher once and gets every side's candidates, with each candidate's score on every side
(complete scoring), from ONE SQL statement. Used alone, each source runs its own side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_fusion.sources import Candidates, Source

if TYPE_CHECKING:
    from langchain_fusion.postgres._store import PostgresHybridStore

__all__ = ["PostgresDenseSource", "PostgresKeywordSource"]


class _StoreSource(Source):
    supports_filter = True

    def __init__(self, store: PostgresHybridStore) -> None:
        self.store = store
        self.joint = store.joint

    def search(self, query: str, k: int, *, filter: Any = None) -> Candidates:
        """Return this side's top ``k`` (one SQL statement), with complete scoring by id."""
        return self.joint.search(query, k, filter, [self])[0]

    async def asearch(self, query: str, k: int, *, filter: Any = None) -> Candidates:
        """Async `search` (psycopg async)."""
        return (await self.joint.asearch(query, k, filter, [self]))[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store.collection!r})"


class PostgresDenseSource(_StoreSource):
    """Dense side of a [`PostgresHybridStore`][langchain_fusion.postgres.PostgresHybridStore].

    Example:
        >>> PostgresDenseSource.kind
        'dense'

    """

    kind = "dense"


class PostgresKeywordSource(_StoreSource):
    """BM25 side of a [`PostgresHybridStore`][langchain_fusion.postgres.PostgresHybridStore].

    Example:
        >>> PostgresKeywordSource.kind
        'bm25'

    """

    kind = "bm25"
