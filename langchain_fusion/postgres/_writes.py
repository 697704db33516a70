"""Writes of ``PostgresHybridStore``: adds (upserts), deletes, drop and index maintenance.

A mixin split out of ``_store.py``. Every add or delete updates the documents, the BM25 terms,
postings and corpus statistics in ONE transaction, under the collection's registry row lock.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any

import numpy as np
from langchain_core.documents import Document
from numpy.typing import NDArray

from langchain_fusion.lexical.tokenizer import Encoding, TermEncoder, Tokenizer
from langchain_fusion.postgres._base import _StoreBase
from langchain_fusion.postgres._copy import Postings, documents_stream, postings_stream
from langchain_fusion.postgres._schema import (
    _CREATE_TABLES,
    PostgresStoreError,
    _friendly,
    _metadata_json,
    _no_nul,
)
from langchain_fusion.postgres._sql import _ADD_STATISTICS, _DELETE

__all__: list[str] = []

_SLICE = 2_500
"""Rows per COPY round of ``add_embeddings`` (the next slice is tokenized while one is written)."""


def _int_array(values: list[int]) -> str:
    """Write an int array parameter in PostgreSQL's text form (cast in SQL): cheaper to send."""
    return "{" + ",".join(map(str, values)) + "}"


class _Batch:
    """One ``add_embeddings`` call's rows, the term ids known so far and the counts written."""

    def __init__(
        self,
        ids: list[str],
        texts: list[str],
        metas: list[str],
        vectors: NDArray[np.float32],
        term_ids: dict[str, int],
        tokenizer: Tokenizer,
    ) -> None:
        self.ids, self.texts, self.metas, self.vectors = ids, texts, metas, vectors
        self.term_ids = term_ids  # term -> id in the terms table (the writing thread's)
        self.encoder = TermEncoder(tokenizer)  # call-local term ids (the tokenizing thread's)
        self.to_global: list[int] = []  # call-local id -> id in the terms table
        self.total_len = 0
        self._terms: list[NDArray[np.int64]] = []

    def encode(self, rows: list[int]) -> tuple[Encoding, list[str]]:
        """Tokenize some rows; return their postings and the terms first seen in them."""
        vocabulary = self.encoder.vocabulary
        before = len(vocabulary)
        encoding = self.encoder.encode(self.texts_of(rows))
        return encoding, list(islice(vocabulary, before, None))

    def texts_of(self, rows: list[int]) -> list[str]:
        return [self.texts[i] for i in rows]

    def count(self, postings: Postings) -> None:
        self._terms.append(postings.term)
        self.total_len += int(postings.lengths.sum())

    def document_frequencies(self) -> tuple[list[int], list[int]]:
        """Return the distinct term ids written (ascending) and how many documents hold each."""
        if not self._terms:
            return [], []
        terms, df = np.unique(np.concatenate(self._terms), return_counts=True)
        return terms.tolist(), df.tolist()


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
        try:
            with self._conn() as conn, conn.transaction():
                info = self._read_info(conn, lock=True)
                if info is None:
                    info = self._create(conn, arr.shape[1])
                dim = int(info.config["dim"])
                if arr.shape[1] != dim:
                    raise ValueError(
                        f"embeddings have dimension {arr.shape[1]}, but collection "
                        f"{self.collection!r} holds vectors of dimension {dim}"
                    )
                self._delete_in(conn, [ids_out[i] for i in keep])
                if self._term_uid != info.uid:
                    self._term_ids, self._term_uid = {}, info.uid
                # the collection's stored tokenizer (``_read_info`` just set what it reads)
                batch = _Batch(ids_out, texts_l, metas, arr, dict(self._term_ids), self.tokenizer)
                uid = info.uid
                self._write_rows(conn, keep, batch)
                self._read_info(conn)
        except (ValueError, TypeError, PostgresStoreError):
            raise
        except psycopg.Error as exc:
            raise _friendly(exc) from None
        # The cache takes the new term ids only after the commit (a rollback drops those rows).
        if self._term_uid == uid:
            self._term_ids = batch.term_ids
        return ids_out

    def _write_rows(self, conn: Any, keep: list[int], batch: _Batch) -> None:
        """Copy the rows in slices, preparing the next slice while one is being copied.

        For each slice: tokenize it (Python), reserve its new term ids and row ids (one short
        round trip), encode its COPY streams (Python), copy them (PostgreSQL). A writer thread
        runs the round trips and copies on the connection (it alone uses it while slices are in
        flight); the caller's thread tokenizes and encodes the next slices meanwhile, so the
        server is kept busy. The statistics are updated once, after the last slice.
        """
        from psycopg import sql

        slices = [keep[a : a + _SLICE] for a in range(0, len(keep), _SLICE)]
        encoding, new_terms = batch.encode(slices[0])
        ready = self._encode_rows(
            slices[0], encoding, self._reserve(conn, new_terms, len(slices[0]), batch), batch
        )
        if len(slices) == 1:
            self._copy_rows(conn, ready)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(1, thread_name_prefix="langchain-fusion-pg-write") as pool:
                upcoming = batch.encode(slices[1])
                for j in range(len(slices)):
                    last = j + 1 == len(slices)
                    if not last:  # queued before the copy: a short round trip
                        reserved = pool.submit(
                            self._reserve, conn, upcoming[1], len(slices[j + 1]), batch
                        )
                    copying = pool.submit(self._copy_rows, conn, ready)
                    if not last:
                        ready = self._encode_rows(
                            slices[j + 1], upcoming[0], reserved.result(), batch
                        )
                        if j + 2 < len(slices):
                            upcoming = batch.encode(slices[j + 2])
                    copying.result()
                # leaving the pool waits for a copy still in flight (after an error, too)
        terms, df = batch.document_frequencies()
        n = self._names
        conn.execute(
            sql.SQL(_ADD_STATISTICS).format(terms=n.terms, registry=n.registry),
            {
                "terms": _int_array(terms),
                "df": _int_array(df),
                "n_docs": len(keep),
                "total_len": batch.total_len,
                "collection": self.collection,
            },
        )

    def _resolve_terms(self, conn: Any, new_terms: list[str], batch: _Batch) -> None:
        """Give the call's new terms their ids in the terms table (adding those it lacks)."""
        from psycopg import sql

        known = batch.term_ids
        missing = sorted(t for t in new_terms if t not in known)
        for t in missing:
            _no_nul(t, "a token")
        if missing:
            rows = conn.execute(
                sql.SQL(
                    "WITH new AS (INSERT INTO {terms} (term) SELECT unnest(%(t)s::text[]) "
                    "ON CONFLICT (term) DO NOTHING RETURNING term, id) "
                    "SELECT term, id FROM new UNION ALL "
                    "SELECT term, id FROM {terms} WHERE term = ANY(%(t)s)"
                ).format(terms=self._names.terms),
                {"t": missing},
            ).fetchall()
            # Writers hold the collection's registry row lock, so a term this statement does
            # not insert was committed before it began: the SELECT half sees it.
            known.update(rows)
        batch.to_global.extend(map(known.__getitem__, new_terms))

    def _reserve(
        self, conn: Any, new_terms: list[str], n_rows: int, batch: _Batch
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Reserve a slice's ids: its new terms' (added to the terms table) and its rows'.

        Returns:
            The row ids and the call-local -> terms-table id map so far.

        """
        self._resolve_terms(conn, new_terms, batch)
        # One block from the documents' sequence (contiguous unless another session drew from
        # it meanwhile; then the values themselves come back).
        lo, hi, spread = conn.execute(
            "WITH v AS (SELECT nextval(pg_get_serial_sequence(%s, 'rowid')) AS v "
            "FROM generate_series(1, %s)) SELECT min(v), max(v), "
            "CASE WHEN max(v) - min(v) + 1 = count(*) THEN NULL ELSE array_agg(v ORDER BY v) END "
            "FROM v",
            [self._names.docs.as_string(conn), n_rows],
        ).fetchone()
        rowids = np.arange(lo, hi + 1, dtype=np.int64) if spread is None else np.array(spread)
        return rowids, np.asarray(batch.to_global, dtype=np.int64)

    @staticmethod
    def _encode_rows(
        rows: list[int],
        encoding: Encoding,
        reserved: tuple[NDArray[np.int64], NDArray[np.int64]],
        batch: _Batch,
    ) -> tuple[list[bytes], bytes]:
        """Encode a slice's binary COPY streams: the documents' (in chunks) and the postings'."""
        rowids, to_global = reserved
        postings = Postings.from_encoding(encoding, to_global)
        documents = documents_stream(
            rowids,
            [batch.ids[i] for i in rows],
            batch.texts_of(rows),
            [batch.metas[i] for i in rows],
            batch.vectors[rows],
            postings,
        )
        batch.count(postings)
        return list(documents), postings_stream(postings, rowids)

    def _copy_rows(self, conn: Any, streams: tuple[list[bytes], bytes]) -> None:
        """Copy a slice into the documents and postings tables (binary COPY)."""
        from psycopg import sql

        n = self._names
        documents, postings = streams
        with conn.cursor().copy(
            sql.SQL(
                "COPY {} (rowid, id, content, metadata, embedding, terms, tfs, len) "
                "FROM STDIN (FORMAT BINARY)"
            ).format(n.docs)
        ) as copy:
            for chunk in documents:
                copy.write(chunk)
        with conn.cursor().copy(
            sql.SQL("COPY {} (term, doc, tf, dl) FROM STDIN (FORMAT BINARY)").format(n.postings)
        ) as copy:
            copy.write(postings)

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
