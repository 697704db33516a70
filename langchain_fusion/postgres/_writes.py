"""Writes of ``PostgresHybridStore``: adds (upserts), deletes, drop and index maintenance.

A mixin split out of ``_store.py``. Every add or delete updates the documents, the BM25 terms,
postings and corpus statistics in ONE transaction, under the collection's registry row lock.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from numpy.typing import NDArray

from langchain_fusion.lexical.tokenizer import Tokenizer
from langchain_fusion.postgres._base import _StoreBase
from langchain_fusion.postgres._schema import (
    _CREATE_TABLES,
    PostgresStoreError,
    Vector,
    _as_is,
    _Collection,
    _friendly,
    _metadata_json,
    _no_nul,
)
from langchain_fusion.postgres._sql import _DELETE, _INSERT, _STAGING

__all__: list[str] = []


class _StoreWrites(_StoreBase):
    """The write methods of ``PostgresHybridStore`` (a mixin; see that class)."""

    # ------------------------------------------------------------------ writing

    def _prepare(
        self,
        texts: Sequence[str],
        vectors: Any,
        metadatas: Sequence[dict[str, Any] | None] | None,
        ids: Sequence[str | None] | None,
    ) -> tuple[list[str], list[str], list[str], NDArray[np.float32]]:
        n = len(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] must be a str, got {type(t).__name__}")
            _no_nul(t, f"texts[{i}]")
        if metadatas is not None and len(metadatas) != n:
            raise ValueError(f"got {len(metadatas)} metadatas for {n} texts")
        if ids is not None and len(ids) != n:
            raise ValueError(f"got {len(ids)} ids for {n} texts")
        out_ids = []
        for i in range(n):
            raw = None if ids is None else ids[i]
            doc_id = uuid.uuid4().hex if raw is None else str(raw)
            if not doc_id:
                raise ValueError(f"ids[{i}] is empty")
            out_ids.append(_no_nul(doc_id, f"id {doc_id!r}"))
        metas = [
            _metadata_json(None if metadatas is None else metadatas[i], f"of document {i}")
            for i in range(n)
        ]
        try:
            arr = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError):
            raise ValueError("embeddings must be a (n, dim) array of floats") from None
        if arr.ndim != 2 or arr.shape[0] != n:
            raise ValueError(f"embeddings must have shape ({n}, dim), got {arr.shape}")
        if n and not np.isfinite(arr).all():
            raise ValueError("embeddings contain NaN or infinite values")
        if self._info is not None and n and arr.shape[1] != int(self._info.config["dim"]):
            raise ValueError(
                f"embeddings have dimension {arr.shape[1]}, but collection {self.collection!r} "
                f"holds vectors of dimension {self._info.config['dim']}"
            )
        return out_ids, list(texts), metas, arr

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and add (or replace, by id) texts; one transaction.

        Example:
            >>> from langchain_fusion.postgres import PostgresHybridStore
            >>> PostgresHybridStore.add_texts.__name__
            'add_texts'

        """
        texts = list(texts)
        if not texts:
            return []
        vectors = self.embeddings.embed_documents(texts)
        return self.add_embeddings(texts, vectors, metadatas=metadatas, ids=ids)

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Add documents; ``Document.id`` (or ``ids=``) is the id, a new uuid otherwise.

        Example:
            >>> from langchain_fusion.postgres import PostgresHybridStore
            >>> PostgresHybridStore.add_documents.__name__
            'add_documents'

        """
        ids = kwargs.pop("ids", None)
        if ids is None:
            ids = [d.id for d in documents]
        return self.add_texts(
            [d.page_content for d in documents],
            [dict(d.metadata) for d in documents],
            ids=ids,
        )

    def add_embeddings(
        self,
        texts: Sequence[str],
        embeddings: Any,
        *,
        metadatas: Sequence[dict[str, Any] | None] | None = None,
        ids: Sequence[str | None] | None = None,
    ) -> list[str]:
        """Add texts with precomputed vectors (no embedding call); upsert by id.

        The vectors, BM25 terms, postings and statistics are written in ONE transaction: a
        failure (or a killed process) leaves the collection as it was.

        Example:
            >>> from langchain_fusion.postgres import PostgresHybridStore
            >>> PostgresHybridStore.add_embeddings.__name__
            'add_embeddings'

        """
        import psycopg

        ids_out, texts_l, metas, arr = self._prepare(texts, embeddings, metadatas, ids)
        if not ids_out:
            return []
        # Last occurrence of a repeated id wins (as an upsert would).
        last = {doc_id: i for i, doc_id in enumerate(ids_out)}
        keep = sorted(last.values())
        tokenizer = self.tokenizer
        token_lists = tokenizer.tokenize_many([texts_l[i] for i in keep])
        try:
            with self._conn() as conn, conn.transaction():
                info = self._read_info(conn, lock=True)
                if info is None:
                    info = self._create(conn, arr.shape[1])
                elif tokenizer.to_config() != info.config["tokenizer"]:
                    token_lists = Tokenizer.from_config(info.config["tokenizer"]).tokenize_many(
                        [texts_l[i] for i in keep]
                    )
                dim = int(info.config["dim"])
                if arr.shape[1] != dim:
                    raise ValueError(
                        f"embeddings have dimension {arr.shape[1]}, but collection "
                        f"{self.collection!r} holds vectors of dimension {dim}"
                    )
                self._delete_in(conn, [ids_out[i] for i in keep])
                term_ids = self._term_ids_for(conn, info, token_lists)
                uid = info.uid
                self._stage(conn, keep, ids_out, texts_l, metas, arr, token_lists, term_ids)
                n = self._names
                from psycopg import sql

                conn.execute(
                    sql.SQL(_INSERT).format(
                        docs=n.docs, postings=n.postings, terms=n.terms, registry=n.registry
                    ),
                    {"collection": self.collection},
                )
                self._read_info(conn)
        except (ValueError, TypeError, PostgresStoreError):
            raise
        except psycopg.Error as exc:
            raise _friendly(exc) from None
        if self._term_uid == uid:
            self._term_ids = term_ids
        return ids_out

    def _term_ids_for(
        self, conn: Any, info: _Collection, token_lists: list[list[str]]
    ) -> dict[str, int]:
        from psycopg import sql

        if self._term_uid != info.uid:
            self._term_ids = {}
            self._term_uid = info.uid
        cache = self._term_ids
        vocab = {t for tokens in token_lists for t in tokens}
        for t in vocab:
            _no_nul(t, "a token")
        missing = sorted(t for t in vocab if t not in cache)
        if missing:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (term) SELECT unnest(%s::text[]) ON CONFLICT (term) DO NOTHING"
                ).format(self._names.terms),
                [missing],
            )
            rows = conn.execute(
                sql.SQL("SELECT term, id FROM {} WHERE term = ANY(%s)").format(self._names.terms),
                [missing],
            ).fetchall()
            fresh = dict(rows)
        else:
            fresh = {}
        # The cache takes the new ids only after the commit (a rollback drops those rows).
        merged = dict(cache)
        merged.update(fresh)
        return merged

    def _stage(
        self,
        conn: Any,
        keep: list[int],
        ids: list[str],
        texts: list[str],
        metas: list[str],
        arr: NDArray[np.float32],
        token_lists: list[list[str]],
        term_ids: dict[str, int],
    ) -> None:
        from psycopg.types.json import Jsonb

        conn.execute(_STAGING)
        with conn.cursor().copy(
            "COPY lf_staging (ord, id, content, metadata, embedding, terms, tfs, len) "
            "FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int4", "text", "text", "jsonb", "vector", "int4[]", "int4[]", "int4"])
            for ord_, (i, tokens) in enumerate(zip(keep, token_lists, strict=True)):
                counts = Counter(tokens)
                copy.write_row(
                    (
                        ord_,
                        ids[i],
                        texts[i],
                        Jsonb(metas[i], dumps=_as_is),
                        Vector(arr[i]),
                        [term_ids[t] for t in counts],
                        list(counts.values()),
                        len(tokens),
                    )
                )

    def _delete_in(self, conn: Any, ids: list[str]) -> int:
        from psycopg import sql

        n = self._names
        row = conn.execute(
            sql.SQL(_DELETE).format(
                docs=n.docs, postings=n.postings, terms=n.terms, registry=n.registry
            ),
            {"ids": ids, "collection": self.collection},
        ).fetchone()
        return int(row[0]) if row else 0

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete documents by id (one transaction; statistics updated with them).

        Returns:
            True when at least one document was deleted, False otherwise.

        Example:
            >>> from langchain_fusion.postgres import PostgresHybridStore
            >>> PostgresHybridStore.delete.__name__
            'delete'

        """
        import psycopg

        if ids is None:
            raise ValueError("delete needs ids=[...]; to drop the whole collection use drop()")
        ids = [_no_nul(str(i), f"id {i!r}") for i in ids]
        if not ids:
            return False
        try:
            with self._conn() as conn, conn.transaction():
                if self._read_info(conn, lock=True) is None:
                    return False
                deleted = self._delete_in(conn, ids)
                self._read_info(conn)
        except psycopg.Error as exc:
            raise _friendly(exc) from None
        return deleted > 0

    def drop(self) -> None:
        """Drop the collection's tables and registry row (irreversible).

        Example:
            >>> from langchain_fusion.postgres import PostgresHybridStore
            >>> PostgresHybridStore.drop.__name__
            'drop'

        """
        from psycopg import sql

        n = self._names
        with self._conn() as conn, conn.transaction():
            for table in (n.postings, n.terms, n.docs):
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE name = %s").format(n.registry), [self.collection]
            )
        self._info = None
        self._term_ids = {}

    def drop_vector_index(self) -> None:
        """Drop the HNSW index (before a bulk load; `build_vector_index` makes it again).

        Dense search stays correct without it (exact scan), only slower.

        Example:
            >>> from langchain_fusion.postgres import PostgresHybridStore
            >>> PostgresHybridStore.drop_vector_index.__name__
            'drop_vector_index'

        """
        from psycopg import sql

        with self._conn() as conn:
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(self._names.hnsw))

    def build_vector_index(self, *, maintenance_work_mem: str = "1GB") -> None:
        """(Re)build the HNSW index if it is missing (after a bulk load: much faster in one go).

        Example:
            >>> from langchain_fusion.postgres import PostgresHybridStore
            >>> PostgresHybridStore.build_vector_index.__name__
            'build_vector_index'

        """
        from psycopg import sql

        info = self._refresh()
        if info is None:
            return
        if not re.fullmatch(r"[0-9]+[kMG]B", maintenance_work_mem):
            raise ValueError(
                f"maintenance_work_mem must look like '1GB', got {maintenance_work_mem!r}"
            )
        n = self._names
        with self._conn() as conn:
            conn.execute(
                sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(maintenance_work_mem))
            )
            conn.execute(
                sql.SQL(_CREATE_TABLES[3]).format(
                    docs=n.docs,
                    hnsw=n.hnsw,
                    m=sql.Literal(int(info.config["hnsw"]["m"])),
                    efc=sql.Literal(int(info.config["hnsw"]["ef_construction"])),
                )
            )
            conn.execute("RESET maintenance_work_mem")

    def optimize(self) -> None:
        """``VACUUM ANALYZE`` the collection (after a bulk load: index-only postings scans).

        Example:
            >>> from langchain_fusion.postgres import PostgresHybridStore
            >>> PostgresHybridStore.optimize.__name__
            'optimize'

        """
        from psycopg import sql

        n = self._names
        with self._conn() as conn:
            for table in (n.docs, n.terms, n.postings):
                conn.execute(sql.SQL("VACUUM ANALYZE {}").format(table))
