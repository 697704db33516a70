"""`PostgresHybridStore`: documents, vectors and BM25 statistics in PostgreSQL + pgvector.

Layout of a collection ``c`` (all names are checked identifiers):

* ``langchain_fusion_collections``: one row per collection: schema version, configuration
  (embedding identity and dimension, tokenizer, BM25 parameters) and the corpus statistics
  ``n_docs`` and ``total_len``. Writers lock this row, so writes to one collection are
  serialised and the statistics stay exact under concurrency.
* ``lf_c_docs``: ``rowid`` (insertion order), ``id`` (unique), ``content``, ``metadata`` (jsonb),
  ``embedding`` (``vector(dim)``, HNSW index with cosine distance), and the document's BM25 terms
  (``terms`` int4[] of term ids, ``tfs`` their counts, ``len`` its length in tokens), tokenized
  by the package's own [`Tokenizer`][langchain_fusion.lexical.Tokenizer].
* ``lf_c_terms``: ``term`` -> ``id`` and its document frequency ``df``.
* ``lf_c_postings``: the inverted index ``(term, doc, tf, dl)``, primary key ``(term, doc)``
  (a btree: a query term's postings are one index range).

BM25 (Lucene variant, the package's default) is computed by one SQL statement from these
tables, with the same formula as [`BM25Index`][langchain_fusion.lexical.BM25Index].
"""

from __future__ import annotations

import asyncio
import math
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from numpy.typing import NDArray

from langchain_fusion.lexical.tokenizer import Tokenizer
from langchain_fusion.postgres._filters import filter_sql
from langchain_fusion.postgres._schema import (
    _METHODS,
    _NO_PGVECTOR,
    SCHEMA_VERSION,
    PostgresStoreError,
    Vector,
    _check_collection,
    _Collection,
    _friendly,
    _Names,
    _no_nul,
    _register_vector,
)
from langchain_fusion.postgres._sql import _QUERY_TERMS, _SCORE_SQL, _TFC, _joint_sql
from langchain_fusion.postgres._writes import _StoreWrites

if TYPE_CHECKING:
    from langchain_fusion.sources import Candidates, Source

__all__ = ["PostgresHybridStore", "PostgresStoreError", "SCHEMA_VERSION"]


@dataclass
class JointResult:
    """Both sides' answers to one query, with complete scores for every candidate.

    Attributes:
        dense_ids: Dense top-k ids, best first.
        bm25_ids: BM25 top-k ids, best first.
        dense: id -> cosine similarity, for every candidate of either side.
        bm25: id -> BM25 score, for every candidate of either side.
        docs: id -> Document, for every candidate.
        query_vector: The query embedding.

    """

    dense_ids: list[str]
    bm25_ids: list[str]
    dense: dict[str, float]
    bm25: dict[str, float]
    docs: dict[str, Document]
    query_vector: NDArray[np.float32] | None


class PostgresHybridStore(_StoreWrites, VectorStore):
    """A LangChain vector store in PostgreSQL + pgvector that also does BM25 in SQL.

    Args:
        connection: A DSN (``postgresql://user@host:5432/db``), a ``psycopg_pool.ConnectionPool``
            or a ``psycopg_pool.AsyncConnectionPool`` (async methods only).
        embedding: The embedding model (``None``: the local all-MiniLM-L6-v2, extra ``local``).
        collection: Collection name: 1-40 ASCII letters, digits or underscores.
        tokenizer: BM25 tokenizer (default ``Tokenizer()``); for an existing collection,
            ``None`` uses the stored one and another one is refused.
        k1: BM25 saturation (default 1.5; stored with the collection).
        b: BM25 length normalisation (default 0.75; stored with the collection).
        bm25_method: Only ``"lucene"`` is computed in SQL.
        dense_search: ``"auto"`` (exact below ``hnsw_threshold`` documents, HNSW above),
            ``"hnsw"`` or ``"exact"``.
        hnsw_threshold: See ``dense_search``.
        hnsw_m: HNSW graph degree (used when the collection is created).
        ef_construction: HNSW build beam width (used when the collection is created).
        ef_search: HNSW search beam width (raised to ``k`` when smaller).
        replicas: DSNs of read replicas: searches and reads go to them (round robin), writes
            to ``connection``.
        pool_size: Maximum connections of each pool the store opens itself.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_fusion.postgres import embedded_server
        >>> with embedded_server() as dsn:
        ...     store = PostgresHybridStore(dsn, DeterministicFakeEmbedding(size=8))
        ...     store.add_texts(["solar panels", "wind turbines"], ids=["a", "b"])
        ...     [d.id for d, s in store.keyword_search("solar", k=5)]
        ...     store.close()
        ['a', 'b']
        ['a']

    """

    def __init__(
        self,
        connection: Any,
        embedding: Embeddings | None = None,
        *,
        collection: str = "langchain_fusion",
        tokenizer: Tokenizer | None = None,
        k1: float | None = None,
        b: float | None = None,
        bm25_method: str = "lucene",
        dense_search: str = "auto",
        hnsw_threshold: int = 50_000,
        hnsw_m: int = 16,
        ef_construction: int = 64,
        ef_search: int = 100,
        replicas: Sequence[str] = (),
        pool_size: int = 4,
    ) -> None:
        self.collection = _check_collection(collection)
        if bm25_method not in _METHODS:
            raise ValueError(
                f"bm25_method {bm25_method!r} is not computed in PostgreSQL; use 'lucene'"
            )
        if dense_search not in ("auto", "hnsw", "exact"):
            raise ValueError(
                f"dense_search must be 'auto', 'hnsw' or 'exact', got {dense_search!r}"
            )
        if tokenizer is not None and not isinstance(tokenizer, Tokenizer):
            raise TypeError(
                f"tokenizer must be a langchain_fusion Tokenizer, got {type(tokenizer).__name__}"
            )
        from langchain_fusion.lexical.scoring import validate_params

        validate_params(
            k1=1.5 if k1 is None else k1, b=0.75 if b is None else b, method="lucene", delta=0.5
        )
        self._embedding = embedding
        self._given_tokenizer = tokenizer
        self._given_k1, self._given_b = k1, b
        self.dense_search = dense_search
        self.hnsw_threshold = int(hnsw_threshold)
        self.hnsw_m = int(hnsw_m)
        self.ef_construction = int(ef_construction)
        self.ef_search = int(ef_search)
        self._names = _Names(self.collection)
        self._lock = threading.RLock()
        self._term_ids: dict[str, int] = {}
        self._term_uid: str | None = None
        self._stored_tokenizer: tuple[dict[str, Any], Tokenizer] | None = None
        self._info: _Collection | None = None
        self._vector_info: Any = None
        self._dsn: str | None = None
        self._pool: Any = None
        self._apools: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._async_only = False
        self._own_pool = False
        self._pool_size = int(pool_size)
        self._replica_dsns = [str(r) for r in replicas]
        self._replica_pools: list[Any] = []
        self._next_replica = 0
        self._joint = _JointSearcher(self)
        self._open(connection)

    def __enter__(self) -> PostgresHybridStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        info = self._refresh()
        return 0 if info is None else info.n_docs

    def __contains__(self, doc_id: object) -> bool:
        """Whether a document with this id is stored (one query; ``HybridIndex`` has the same)."""
        return isinstance(doc_id, str) and bool(self.get_by_ids([doc_id]))

    def __repr__(self) -> str:
        return f"PostgresHybridStore(collection={self.collection!r})"

    # ------------------------------------------------------------------ reading

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Documents with these ids (unknown ids are skipped), in the order asked.

        Example:
            >>> PostgresHybridStore.get_by_ids.__name__
            'get_by_ids'

        """
        found = self._load([str(i) for i in ids])
        return [doc for doc in found if doc is not None]

    def _load(self, ids: Sequence[str]) -> list[Document | None]:
        from psycopg import sql

        if not ids:
            return []
        for i in ids:
            _no_nul(i, f"id {i!r}")
        with self._conn(read=True) as conn:
            if self._info is None and self._read_info(conn) is None:
                return [None] * len(ids)
            rows = conn.execute(
                sql.SQL("SELECT id, content, metadata FROM {} WHERE id = ANY(%s)").format(
                    self._names.docs
                ),
                [list(ids)],
            ).fetchall()
        by_id = {r[0]: Document(page_content=r[1], metadata=r[2], id=r[0]) for r in rows}
        return [by_id.get(i) for i in ids]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Relevance in [0, 1] from cosine similarity: ``(1 + cosine) / 2``."""
        return lambda similarity: (1.0 + similarity) / 2.0

    def embed_query(self, query: str) -> NDArray[np.float32]:
        """Embed a query with the store's model, checked against the collection's dimension."""
        vec = np.asarray(self.embeddings.embed_query(query), dtype=np.float32)
        self._check_query_vector(vec)
        return vec

    def _check_query_vector(self, vec: NDArray[np.float32]) -> None:
        if vec.ndim != 1 or not np.isfinite(vec).all():
            raise ValueError("the query embedding must be a finite 1-D vector")
        if self._info is not None and vec.shape[0] != int(self._info.config["dim"]):
            raise ValueError(
                f"the query embedding has dimension {vec.shape[0]}, but collection "
                f"{self.collection!r} holds vectors of dimension {self._info.config['dim']}"
            )

    def _exact(self, exact: bool | None) -> bool:
        if exact is not None:
            return bool(exact)
        if self.dense_search == "exact":
            return True
        if self.dense_search == "hnsw":
            return False
        return self._info is None or self._info.n_docs < self.hnsw_threshold

    @staticmethod
    def _check_k(k: Any) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        return int(k)

    def _query_params(
        self,
        query: str | Mapping[str, float] | None,
        vector: NDArray[np.float32] | None,
        k: int,
        filter: Any,
    ) -> tuple[dict[str, Any], str, bool]:
        self._check_k(k)
        cond, fparams = filter_sql(filter)
        counts: Mapping[str, float]
        if query is None:
            counts = {}
        elif isinstance(query, str):
            counts = Counter(self.tokenizer(query))
        else:  # {term: weight} over index terms (an expanded query)
            counts = {str(t): float(w) for t, w in query.items() if float(w) > 0}
        for t in counts:
            _no_nul(t, "the query")
        bm = self.bm25_params
        params: dict[str, Any] = {
            "collection": self.collection,
            "qterms": list(counts.keys()),
            "qtf": [float(v) for v in counts.values()],
            "k1": bm["k1"],
            "b": bm["b"],
            "k": int(k),
            "kk": int(k),
            "qvec": Vector(vector) if vector is not None else None,
        }
        params.update(fparams)
        return params, cond, filter is not None

    def joint_search(
        self,
        query: str | Mapping[str, float],
        k: int,
        *,
        k_keyword: int | None = None,
        filter: Any = None,
        dense: bool = True,
        keyword: bool = True,
        exact: bool | None = None,
        query_vector: Any = None,
    ) -> JointResult:
        """Dense top-``k`` and BM25 top-``k`` with every candidate's two scores, in ONE statement.

        Example:
            >>> PostgresHybridStore.joint_search.__name__
            'joint_search'

        """
        import psycopg

        vector = self._vector_for(query, query_vector, dense)
        if self._info is None and self._refresh() is None:
            return JointResult([], [], {}, {}, {}, vector)
        params, cond, filtered = self._query_params(query if keyword else None, vector, k, filter)
        if k_keyword is not None:
            params["kk"] = self._check_k(k_keyword)
        stmt = self._joint_statement(filtered, self._exact(exact), dense, keyword, cond)
        try:
            with self._conn(read=True) as conn, conn.pipeline():
                conn.execute(
                    "SELECT set_config('hnsw.ef_search', %s, false), "
                    "set_config('hnsw.iterative_scan', 'relaxed_order', false)",
                    [str(max(self.ef_search, int(k)))],
                )
                rows = conn.execute(stmt, params).fetchall()
        except psycopg.Error as exc:
            raise _friendly(exc) from None
        return self._joint_result(rows, vector)

    async def ajoint_search(
        self,
        query: str,
        k: int,
        *,
        filter: Any = None,
        dense: bool = True,
        keyword: bool = True,
        exact: bool | None = None,
        query_vector: Any = None,
    ) -> JointResult:
        """Async `joint_search` (psycopg async; the query is embedded in a worker thread)."""
        import psycopg

        if query_vector is None and dense:
            vector: NDArray[np.float32] | None = np.asarray(
                await self.embeddings.aembed_query(query), dtype=np.float32
            )
            assert vector is not None
            self._check_query_vector(vector)
        else:
            vector = self._vector_for(query, query_vector, dense)
        if not self._async_only and not self._replica_dsns and self._dsn is None:
            return await asyncio.to_thread(
                self.joint_search,
                query,
                k,
                filter=filter,
                dense=dense,
                keyword=keyword,
                exact=exact,
                query_vector=vector,
            )
        pool = await self._aconn_pool()
        try:
            async with pool.connection() as conn:
                if self._info is None:
                    await self._aread_info(conn)
                    if self._info is None:
                        return JointResult([], [], {}, {}, {}, vector)
                params, cond, filtered = self._query_params(
                    query if keyword else None, vector, k, filter
                )
                stmt = self._joint_statement(filtered, self._exact(exact), dense, keyword, cond)
                await self._aregister(conn)
                async with conn.pipeline():
                    await conn.execute(
                        "SELECT set_config('hnsw.ef_search', %s, false), "
                        "set_config('hnsw.iterative_scan', 'relaxed_order', false)",
                        [str(max(self.ef_search, int(k)))],
                    )
                    cur = await conn.execute(stmt, params)
                    rows = await cur.fetchall()
        except psycopg.Error as exc:
            raise _friendly(exc) from None
        return self._joint_result(rows, vector)

    async def _aregister(self, conn: Any) -> None:
        if conn.adapters.types.get("vector") is not None:
            return
        from psycopg.types import TypeInfo

        if self._vector_info is None:
            info = await TypeInfo.fetch(conn, "vector")
            if info is None:
                raise PostgresStoreError(_NO_PGVECTOR)
            self._vector_info = info
        _register_vector(conn, self._vector_info)

    async def _aread_info(self, conn: Any) -> None:
        from psycopg import sql

        cur = await conn.execute(
            sql.SQL(
                "SELECT uid, schema_version, config, n_docs, total_len FROM {} WHERE name = %s"
            ).format(self._names.registry),
            [self.collection],
        )
        row = await cur.fetchone()
        if row is None:
            self._info = None
            return
        info = _Collection(row[0], int(row[1]), dict(row[2]), int(row[3]), int(row[4]))
        if info.version > SCHEMA_VERSION:
            raise PostgresStoreError(
                f"collection {self.collection!r} has schema version {info.version}, newer than "
                f"this langchain-fusion understands ({SCHEMA_VERSION}); upgrade: "
                f"pip install -U 'langchain-fusion[postgres]'"
            )
        self._info = info

    def _vector_for(
        self, query: str | Mapping[str, float], query_vector: Any, dense: bool
    ) -> NDArray[np.float32] | None:
        if not dense:
            return None
        if query_vector is not None:
            vec = np.asarray(query_vector, dtype=np.float32)
            self._check_query_vector(vec)
            return vec
        if not isinstance(query, str):
            raise ValueError("a {term: weight} query needs query_vector= for the dense side")
        return self.embed_query(query)

    def _joint_statement(
        self, filtered: bool, exact: bool, dense: bool, keyword: bool, cond: str
    ) -> Any:
        from psycopg import sql

        n = self._names
        text = _joint_sql(filtered, exact, dense, keyword)
        if not dense:
            text = text.replace(
                "1 - (d.embedding <=> %(qvec)s::vector) AS dense", "NULL::float8 AS dense"
            )
        return sql.SQL(text).format(
            docs=n.docs,
            terms=n.terms,
            postings=n.postings,
            registry=n.registry,
            filter=sql.SQL(cond),  # fixed SQL text with named placeholders, no values
        )

    def _joint_result(self, rows: list[Any], vector: NDArray[np.float32] | None) -> JointResult:
        dense_rank: list[tuple[int, str]] = []
        bm_rank: list[tuple[int, str]] = []
        dense: dict[str, float] = {}
        bm25: dict[str, float] = {}
        docs: dict[str, Document] = {}
        for doc_id, dr, br, ds, bs, content, meta, n_docs in rows:
            if dr is not None:
                dense_rank.append((int(dr), doc_id))
            if br is not None:
                bm_rank.append((int(br), doc_id))
            if ds is not None:
                dense[doc_id] = float(ds)
            bm25[doc_id] = float(bs)
            docs[doc_id] = Document(page_content=content, metadata=meta, id=doc_id)
            if self._info is not None and n_docs is not None:
                self._info.n_docs = int(n_docs)
        # HNSW with relaxed ordering may return the dense list slightly out of order
        dense_ids = [i for _, i in sorted(dense_rank)]
        dense_ids.sort(key=lambda i: -dense[i])
        return JointResult(
            dense_ids=dense_ids,
            bm25_ids=[i for _, i in sorted(bm_rank)],
            dense=dense,
            bm25=bm25,
            docs=docs,
            query_vector=vector,
        )

    def score(
        self, query: str | Mapping[str, float], ids: Sequence[str], *, query_vector: Any = None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Exact cosine and BM25 scores of given documents (NaN for unknown ids).

        Example:
            >>> PostgresHybridStore.score.__name__
            'score'

        """
        from psycopg import sql

        ids = [_no_nul(str(i), f"id {i!r}") for i in ids]
        dense_out = np.full(len(ids), np.nan)
        bm_out = np.full(len(ids), np.nan)
        if not ids or (self._info is None and self._refresh() is None):
            return dense_out, bm_out
        vector = self._vector_for(query, query_vector, query_vector is not None)
        params, _, _ = self._query_params(query, vector, 1, None)
        params["ids"] = list(ids)
        dense_expr = (
            "1 - (ids.embedding <=> %(qvec)s::vector)" if vector is not None else "NULL::float8"
        )
        text = _SCORE_SQL.format(query_terms=_QUERY_TERMS, tfc=_TFC, dense=dense_expr)
        n = self._names
        stmt = sql.SQL(text).format(
            docs=n.docs, terms=n.terms, postings=n.postings, registry=n.registry
        )
        with self._conn(read=True) as conn:
            rows = conn.execute(stmt, params).fetchall()
        found = {doc_id: (ds, bs) for doc_id, ds, bs in rows}
        for j, doc_id in enumerate(ids):
            if doc_id in found:
                ds, bs = found[doc_id]
                if ds is not None:
                    dense_out[j] = float(ds)
                bm_out[j] = float(bs)
        return dense_out, bm_out

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Top-``k`` documents by cosine similarity (higher is better).

        Example:
            >>> PostgresHybridStore.similarity_search_with_score.__name__
            'similarity_search_with_score'

        """
        return self.similarity_search_with_score_by_vector(
            list(self.embed_query(query)), k, filter=filter, **kwargs
        )

    def similarity_search_with_score_by_vector(
        self, embedding: Sequence[float], k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Top-``k`` documents for a query vector, with cosine similarities."""
        res = self.joint_search(
            "", k, filter=filter, keyword=False, query_vector=embedding, exact=kwargs.get("exact")
        )
        return [(res.docs[i], res.dense[i]) for i in res.dense_ids]

    def similarity_search(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[Document]:
        """Top-``k`` documents by cosine similarity.

        Example:
            >>> PostgresHybridStore.similarity_search.__name__
            'similarity_search'

        """
        return [d for d, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[Document]:
        """Top-``k`` documents for a query vector."""
        return [
            d
            for d, _ in self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)
        ]

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Async `similarity_search_with_score` (psycopg async)."""
        res = await self.ajoint_search(query, k, filter=filter, keyword=False)
        return [(res.docs[i], res.dense[i]) for i in res.dense_ids]

    async def asimilarity_search(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[Document]:
        """Async `similarity_search` (psycopg async)."""
        pairs = await self.asimilarity_search_with_score(query, k, filter, **kwargs)
        return [d for d, _ in pairs]

    def keyword_search(
        self, query: str, k: int = 4, filter: Any = None
    ) -> list[tuple[Document, float]]:
        """Top-``k`` documents by BM25 (computed in PostgreSQL), with scores.

        Example:
            >>> PostgresHybridStore.keyword_search.__name__
            'keyword_search'

        """
        res = self.joint_search(query, k, filter=filter, dense=False)
        return [(res.docs[i], res.bm25[i]) for i in res.bm25_ids]

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        connection: Any = None,
        collection: str = "langchain_fusion",
        **kwargs: Any,
    ) -> PostgresHybridStore:
        """Create (or open) a collection and add texts.

        Example:
            >>> PostgresHybridStore.from_texts.__name__
            'from_texts'

        """
        if connection is None:
            raise ValueError("from_texts needs connection= (a DSN or a psycopg_pool pool)")
        store = cls(connection, embedding, collection=collection, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    def from_documents(
        cls,
        documents: list[Document],
        embedding: Embeddings | None = None,
        *,
        connection: Any = None,
        collection: str = "langchain_fusion",
        **kwargs: Any,
    ) -> PostgresHybridStore:
        """Create (or open) a collection and add documents (their ids kept).

        Example:
            >>> PostgresHybridStore.from_documents.__name__
            'from_documents'

        """
        if connection is None:
            raise ValueError("from_documents needs connection= (a DSN or a psycopg_pool pool)")
        ids = kwargs.pop("ids", None)
        store = cls(connection, embedding, collection=collection, **kwargs)
        store.add_documents(list(documents), ids=ids)
        return store

    # ------------------------------------------------------------------ fusion

    def as_sources(self) -> list[Source]:
        """Return the dense and BM25 sides as fusion sources sharing one joint searcher.

        Example:
            >>> PostgresHybridStore.as_sources.__name__
            'as_sources'

        """
        from langchain_fusion.postgres._sources import PostgresDenseSource, PostgresKeywordSource

        return [PostgresDenseSource(self), PostgresKeywordSource(self)]

    @property
    def backend(self) -> Any:
        """Return this store as a ``langchain_fusion.backend.Backend`` (with ``search_joint``).

        Example:
            >>> PostgresHybridStore.backend.__doc__.split()[0]
            'Return'

        """
        from langchain_fusion.postgres._backend import PostgresBackend

        return PostgresBackend(self)

    @property
    def joint(self) -> _JointSearcher:
        """The joint searcher shared by this store's sources."""
        return self._joint


class _JointSearcher:
    """Runs both sides of a store's search in one statement for `FusionRetriever`."""

    def __init__(self, store: PostgresHybridStore) -> None:
        self.store = store

    def _split(
        self, res: JointResult, sources: Sequence[Source], query_text: str
    ) -> list[Candidates]:
        from langchain_fusion.sources import Candidates

        store = self.store
        out: list[Candidates] = []
        for src in sources:
            dense_side = getattr(src, "kind", "") == "dense"
            ids = res.dense_ids if dense_side else res.bm25_ids
            table = res.dense if dense_side else res.bm25
            query = res.query_vector

            def scorer(
                other: Sequence[str],
                table: dict[str, float] = table,
                dense_side: bool = dense_side,
                query_vector: Any = query,
            ) -> NDArray[np.float64]:
                values = np.array([table.get(i, math.nan) for i in other], dtype=np.float64)
                missing = [i for i, v in zip(other, values, strict=True) if math.isnan(v)]
                if missing:  # not a candidate of this search: ask the database
                    d, k = store.score(query_text, missing, query_vector=query_vector)
                    extra = dict(zip(missing, (d if dense_side else k).tolist(), strict=True))
                    values = np.array(
                        [extra.get(i, v) if math.isnan(v) else v for i, v in zip(other, values)]
                    )
                return values

            docs = res.docs

            def loader(
                wanted: Sequence[str], docs: dict[str, Document] = docs
            ) -> list[Document | None]:
                have = [docs.get(i) for i in wanted]
                if all(d is not None for d in have):
                    return have
                fetched = store._load([i for i, d in zip(wanted, have) if d is None])
                it = iter(fetched)
                return [d if d is not None else next(it) for d in have]

            out.append(
                Candidates(
                    ids=list(ids),
                    scores=np.array([table[i] for i in ids], dtype=np.float64),
                    loader=loader,
                    id_scorer=scorer,
                    query_vector=query if dense_side else None,
                )
            )
        return out

    def search(
        self, query: str, k: int, filter: Any, sources: Sequence[Source]
    ) -> list[Candidates]:
        """Every source's candidates for one query, from one SQL statement."""
        kinds = {getattr(s, "kind", "") for s in sources}
        res = self.store.joint_search(
            query, k, filter=filter, dense="dense" in kinds, keyword="bm25" in kinds
        )
        return self._split(res, sources, query)

    async def asearch(
        self, query: str, k: int, filter: Any, sources: Sequence[Source]
    ) -> list[Candidates]:
        """Async `search` (psycopg async)."""
        kinds = {getattr(s, "kind", "") for s in sources}
        res = await self.store.ajoint_search(
            query, k, filter=filter, dense="dense" in kinds, keyword="bm25" in kinds
        )
        return self._split(res, sources, query)
