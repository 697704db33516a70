"""`PostgresBackend`: the store seen through the package's storage back-end protocol.

``langchain_fusion.backend`` (the ``Backend`` / ``SupportsJointSearch`` protocols) describes
what a storage back end gives the retrieval faces: per-side search, complete scoring, writes,
statistics and, optionally, a joint search in one call. This adapter answers all of them from a
[`PostgresHybridStore`][langchain_fusion.postgres.PostgresHybridStore]; ``search_joint`` is ONE
SQL statement. The result types are imported from ``langchain_fusion.backend`` when calls are
made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.documents import Document
from numpy.typing import NDArray

from langchain_fusion.postgres._filters import filter_sql

if TYPE_CHECKING:
    from langchain_fusion.postgres._store import JointResult, PostgresHybridStore

__all__ = ["PostgresBackend"]


def _check_filter(filter: Any) -> None:
    if filter is not None and not isinstance(filter, Mapping) and callable(filter):
        raise TypeError(
            "a callable filter cannot run inside PostgreSQL; use the dict syntax "
            "({'field': value, 'page': {'$gte': 2}})"
        )


def _types() -> Any:
    import langchain_fusion.backend as backend  # type: ignore[import-not-found,unused-ignore]

    return backend


class PostgresBackend:
    """A [`PostgresHybridStore`][langchain_fusion.postgres.PostgresHybridStore] as a back end.

    Example:
        >>> PostgresBackend.search_joint.__name__
        'search_joint'

    """

    def __init__(self, store: PostgresHybridStore) -> None:
        self.store = store

    def _hits(self, ids: list[str], table: Mapping[str, float]) -> Any:
        return _types().Hits(list(ids), np.array([table[i] for i in ids], dtype=np.float64))

    def search_dense(self, query_vector: Any, k: int, *, filter: Any = None) -> Any:
        """Top-``k`` ids by cosine similarity (filter before the cut)."""
        _check_filter(filter)
        res = self.store.joint_search(
            "", k, filter=filter, keyword=False, query_vector=query_vector
        )
        return self._hits(res.dense_ids, res.dense)

    def search_keyword(
        self, query: str | Mapping[str, float], k: int, *, filter: Any = None
    ) -> Any:
        """Top-``k`` ids by BM25 computed in SQL (only scores > 0)."""
        _check_filter(filter)
        res = self.store.joint_search(query, k, filter=filter, dense=False)
        return self._hits(res.bm25_ids, res.bm25)

    def score_dense(self, query_vector: Any, ids: Sequence[str]) -> NDArray[np.float64]:
        """Exact cosine similarity of ``ids`` (NaN for unknown ids)."""
        dense, _ = self.store.score("", ids, query_vector=query_vector)
        return dense

    def score_keyword(
        self, query: str | Mapping[str, float], ids: Sequence[str]
    ) -> NDArray[np.float64]:
        """Exact BM25 of ``ids`` (0.0 without query terms, NaN for unknown ids)."""
        _, bm25 = self.store.score(query, ids)
        return bm25

    def search_joint(
        self,
        query: str | Mapping[str, float],
        query_vector: Any,
        k_dense: int,
        k_keyword: int,
        *,
        filter: Any = None,
        complete: bool = True,
    ) -> Any:
        """Both sides' top candidates and the exact scores of their union: ONE SQL statement."""
        _check_filter(filter)
        res: JointResult = self.store.joint_search(
            query, k_dense, k_keyword=k_keyword, filter=filter, query_vector=query_vector
        )
        t = _types()
        dense = self._hits(res.dense_ids, res.dense)
        keyword = self._hits(res.bm25_ids, res.bm25)
        ids = t.union_ids(dense.ids, keyword.ids)
        if not complete:
            return t.JointHits(dense, keyword, ids)
        return t.JointHits(
            dense,
            keyword,
            ids,
            np.array([res.dense.get(i, np.nan) for i in ids], dtype=np.float64),
            np.array([res.bm25.get(i, np.nan) for i in ids], dtype=np.float64),
        )

    def add(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[Mapping[str, Any] | None],
        vectors: Any,
        *,
        upsert: bool = True,
    ) -> list[str]:
        """Store documents in one transaction (vectors required)."""
        if vectors is None:
            raise ValueError("the PostgreSQL store needs vectors (it has no keyword-only mode)")
        if len(set(ids)) != len(ids):
            raise ValueError("ids must be distinct")
        if not upsert:
            existing = [d.id for d in self.store.get_by_ids(list(ids))]
            if existing:
                raise ValueError(f"ids already stored (upsert=False): {existing[:5]}")
        return self.store.add_embeddings(
            list(texts),
            vectors,
            metadatas=[dict(m) if m is not None else None for m in metadatas],
            ids=list(ids),
        )

    def delete(self, ids: Sequence[str] | None = None, *, filter: Any = None) -> bool:
        """Delete by ids and/or dict filter (``filter={}``: everything)."""
        _check_filter(filter)
        targets = list(ids) if ids is not None else []
        if filter is not None:
            targets += self._ids_matching(filter)
        if not targets:
            return False
        return bool(self.store.delete(targets))

    def _ids_matching(self, filter: Any) -> list[str]:
        from psycopg import sql

        cond, params = filter_sql(filter)
        if self.store._refresh() is None:
            return []
        with self.store._conn() as conn:
            rows = conn.execute(
                sql.SQL("SELECT d.id FROM {} d WHERE {}").format(
                    self.store._names.docs, sql.SQL(cond)
                ),
                params,
            ).fetchall()
        return [r[0] for r in rows]

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Documents in the order of ``ids``; unknown ids skipped."""
        return self.store.get_by_ids(ids)

    def stats(self) -> Any:
        """Documents, BM25 parameters, tokenizer and model identity of the collection."""
        info = self.store._refresh()
        bm = self.store.bm25_params
        return _types().BackendStats(
            n_docs=0 if info is None else info.n_docs,
            bm25={"k1": bm["k1"], "b": bm["b"], "method": "lucene", "delta": 0.5},
            tokenizer=self.store.tokenizer.to_config(),
            embedding=dict((info.config.get("embedding") or {}) if info else {}),
            dim=None if info is None else int(info.config["dim"]),
            extra={"collection": self.store.collection, "engine": "postgresql"},
        )
