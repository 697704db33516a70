"""``HybridIndex``: one LangChain ``VectorStore`` holding documents, a dense and a BM25 index.

The documents, their vectors and their BM25 terms live in one
[`Collection`][langchain_fusion.collection.Collection], slot-aligned under one lock (every add,
upsert and delete is applied to all parts at once, so a reader never sees a document in one and
not the others, and BM25 statistics always equal those of an index built from scratch on the
live documents). ``HybridIndex`` is its LangChain face: it embeds texts (outside the lock),
validates input, builds ``Document`` objects and implements the ``VectorStore`` API; the
collection stores, searches and persists. The embedding checks live in
[`langchain_fusion.embedding_checks`][].
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor
from langchain_core.vectorstores import VectorStore
from numpy.typing import ArrayLike, NDArray

from langchain_fusion.collection import Collection, check_k
from langchain_fusion.dense.embeddings import default_embeddings
from langchain_fusion.dense.index import DenseIndex
from langchain_fusion.docstore import DocStore
from langchain_fusion.embedding_checks import (
    CHECK_ROWS,
    check_query_vector,
    check_vectors,
    describe,
    embedding_identity,
    matching_embedding,
)
from langchain_fusion.filters import Filter
from langchain_fusion.index_input import (
    check_bool,
    embed_in_batches,
    prepare_add,
    reject_kwargs,
    store_batch,
    unpack_documents,
)
from langchain_fusion.index_persistence import IndexPersistence
from langchain_fusion.index_search import VectorStoreSearches
from langchain_fusion.lexical.bm25 import BM25Index
from langchain_fusion.lexical.tokenizer import Tokenizer
from langchain_fusion.locking import ReadWriteLock
from langchain_fusion.persistence import (
    CorruptIndexError,
    IndexSnapshot,
)

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["HybridIndex"]

_ADD_OPTIONS = ("upsert", "batch_size", "show_progress")
# Pre-computed vectors are checked this many rows at a time (bounds the temporaries).
_CHECK_ROWS = CHECK_ROWS
_ReadWriteLock = ReadWriteLock  # moved to langchain_fusion.locking (kept for old imports)

_NO_PICKLE = (
    "a HybridIndex cannot be pickled or deep-copied (unpickling can run code, and the index may "
    "be gigabytes): save it with index.save(path) and open it with HybridIndex.load(path); to "
    "share it, pass the same object"
)


class HybridIndex(VectorStoreSearches, IndexPersistence, VectorStore):
    """A LangChain vector store that also keeps a BM25 index of the same documents.

    One object owns the documents (ids, texts, metadata), their vectors (a FAISS-backed
    [`DenseIndex`][], cosine similarity) and a
    [`BM25Index`][], kept in sync: upserts and deletes update
    both indexes and the BM25 statistics exactly. It is a drop-in ``VectorStore``
    (``similarity_search``, ``max_marginal_relevance_search``, ``as_retriever``, ids, upsert,
    ``delete``, ``get_by_ids``) and the fast backend of [`FusionRetriever`][]
    (``FusionRetriever.from_index(index)``).

    Filters: every search takes ``filter=``, a dict in the Mongo-like syntax of
    [`langchain_fusion.filters`][] (``{"source": "a.pdf", "page": {"$gte": 2}}``) or a callable
    ``metadata -> bool``. It is applied *before* the top-k cut inside both engines, so a
    filtered search returns ``k`` results whenever ``k`` matching documents exist. Masks of dict
    filters are cached until the next write.

    Scores:
    [`similarity_search_with_score`][langchain_fusion.HybridIndex.similarity_search_with_score]
    returns the cosine similarity (in [-1, 1], higher is better); relevance scores
    (``similarity_search_with_relevance_scores``) map it to [0, 1] as ``(1 + cosine) / 2``.
    [`keyword_search`][langchain_fusion.HybridIndex.keyword_search] returns BM25 scores.

    Thread safety: any number of concurrent searches, and writes that wait for them. Documents
    are embedded *outside* the lock, so searches continue while a large batch is embedded; the
    short mutation that follows is atomic for readers. Removed documents leave tombstones until
    [`compact`][].

    Args:
        embedding: The embedding model. ``None`` uses the local all-MiniLM-L6-v2 model
            ([`default_embeddings`][], extra ``local``), loaded on first
            use.
        tokenizer: BM25 tokenizer; default [`Tokenizer`][] ``()``
            (lowercase, English stopwords, Snowball stemming).
        k1: BM25 term-frequency saturation (>= 0).
        b: BM25 length normalization, in [0, 1].
        bm25_method: BM25 variant: ``"lucene"``, ``"robertson"``, ``"atire"``, ``"bm25l"`` or
            ``"bm25+"``.
        bm25_delta: Shift of the BM25L/BM25+ variants.
        dense_kind: Vector search structure: ``"auto"`` (exact below ``hnsw_threshold`` vectors,
            HNSW from there on),
            ``"flat"`` (always exact), ``"hnsw"`` or ``"ivf"``.
        hnsw_m: HNSW graph degree.
        ef_construction: HNSW build-time beam width.
        ef_search: HNSW search beam width (raised to ``k`` when smaller).
        nlist: IVF list count (``None``: about ``4 * sqrt(n)``).
        nprobe: IVF lists visited per query.
        hnsw_threshold: With ``dense_kind="auto"``, the size from which HNSW is used (50k: at
            100k chunks HNSW answers in 0.4 ms at recall@10 0.995, exact search in 10 ms).
        batch_size: Texts per ``embed_documents`` call when adding.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> index = HybridIndex(DeterministicFakeEmbedding(size=16))
        >>> index.add_texts(
        ...     ["solar panels on the roof", "wind turbines offshore", "solar power storage"],
        ...     metadatas=[{"topic": "solar"}, {"topic": "wind"}, {"topic": "solar"}],
        ...     ids=["a", "b", "c"],
        ... )
        ['a', 'b', 'c']
        >>> [doc.id for doc in index.similarity_search("wind turbines offshore", k=1)]
        ['b']
        >>> [(doc.id, round(score, 3)) for doc, score in index.keyword_search("solar", k=5)]
        [('a', 0.188), ('c', 0.188)]
        >>> len(index.similarity_search("anything", k=3, filter={"topic": "solar"}))
        2
        >>> index.delete(["a"]), len(index), "a" in index
        (True, 2, False)

    """

    def __init__(
        self,
        embedding: Embeddings | None = None,
        *,
        tokenizer: Tokenizer | None = None,
        k1: float = 1.5,
        b: float = 0.75,
        bm25_method: str = "lucene",
        bm25_delta: float = 0.5,
        dense_kind: str = "auto",
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        nlist: int | None = None,
        nprobe: int = 16,
        hnsw_threshold: int = 50_000,
        batch_size: int = 256,
    ) -> None:
        if embedding is None:
            embedding = default_embeddings()
        elif not isinstance(embedding, Embeddings):
            raise TypeError(
                "embedding must be a LangChain Embeddings object or None (local "
                f"all-MiniLM-L6-v2), got {type(embedding).__name__}"
            )
        self._embedding: Embeddings = embedding
        self.batch_size: int = check_k(batch_size, "batch_size")
        self._collection = Collection(
            tokenizer=tokenizer,
            k1=k1,
            b=b,
            bm25_method=bm25_method,
            bm25_delta=bm25_delta,
            dense_params={
                "kind": dense_kind,
                "hnsw_m": hnsw_m,
                "ef_construction": ef_construction,
                "ef_search": ef_search,
                "nlist": nlist,
                "nprobe": nprobe,
                "hnsw_threshold": hnsw_threshold,
            },
            identity=embedding_identity(embedding),
        )
        self._lock = self._collection.lock

    # ------------------------------------------------------------------ the collection

    @property
    def collection(self) -> Collection:
        """The [`Collection`][langchain_fusion.collection.Collection] this store is a face of.

        It implements the back-end seam [`Backend`][langchain_fusion.backend.Backend] (and
        its one-call ``search_joint``), shares this index's lock, and sees every change.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["a b"], DeterministicFakeEmbedding(size=4))
            >>> index.collection.stats().n_docs
            1

        """
        return self._collection

    @property
    def _docs(self) -> DocStore:
        return self._collection.docs

    @property
    def _bm25(self) -> BM25Index:
        return self._collection.bm25

    @property
    def _dense(self) -> DenseIndex | None:
        return self._collection.dense

    @property
    def _dense_params(self) -> dict[str, Any]:
        params = self._collection.dense_params
        assert params is not None
        return params

    # ------------------------------------------------------------------ basic properties

    @property
    def bm25_params(self) -> dict[str, Any]:
        """The keyword side's BM25 parameters: ``k1``, ``b``, ``method`` and ``delta``.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> HybridIndex(DeterministicFakeEmbedding(size=8), k1=0.9).bm25_params
            {'k1': 0.9, 'b': 0.75, 'method': 'lucene', 'delta': 0.5}

        """
        bm25 = self._bm25
        return {"k1": bm25.k1, "b": bm25.b, "method": bm25.method, "delta": bm25.delta}

    def set_bm25_params(self, *, k1: float | None = None, b: float | None = None) -> None:
        """Change BM25's ``k1`` and/or ``b`` in place (``None`` keeps a value); nothing is rebuilt.

        Searches after the call score as an index built with the new values would, and `save`
        stores them. [`tune_bm25`][langchain_fusion.evaluation.tune.tune_bm25] chooses them on
        labelled queries.

        Raises:
            ValueError: ``k1 < 0`` or ``b`` outside ``[0, 1]``.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["red apples", "green pears"],
            ...                                DeterministicFakeEmbedding(size=8))
            >>> index.set_bm25_params(k1=0.7, b=0.5)
            >>> index.bm25_params["k1"], index.bm25_params["b"]
            (0.7, 0.5)

        """
        self._collection.set_bm25_params(k1=k1, b=b)

    @property
    def embeddings(self) -> Embeddings:
        """The embedding model (used for documents and queries).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> HybridIndex(DeterministicFakeEmbedding(size=4)).embeddings.size
            4

        """
        return self._embedding

    @property
    def tokenizer(self) -> Tokenizer:
        """The BM25 tokenizer.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> HybridIndex(DeterministicFakeEmbedding(size=4)).tokenizer("The running dogs")
            ['run', 'dog']

        """
        return self._bm25.tokenizer

    @property
    def dim(self) -> int | None:
        """Dimension of the stored vectors (``None`` until the first document is added).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex(DeterministicFakeEmbedding(size=4))
            >>> index.dim, index.add_texts(["x"], ids=["1"]), index.dim
            (None, ['1'], 4)

        """
        dense = self._dense
        return None if dense is None else dense.dim

    @property
    def dense_kind(self) -> str | None:
        """The dense index in use: ``"flat"``, ``"hnsw"`` or ``"ivf"`` (None while empty).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> HybridIndex.from_texts(["a"], DeterministicFakeEmbedding(size=4)).dense_kind
            'flat'

        """
        return None if self._dense is None else self._dense.active_kind

    @property
    def ids(self) -> list[str]:
        """Ids of all documents, in insertion order (an upsert moves a document to the end).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["x", "y"], DeterministicFakeEmbedding(size=4),
            ...                                ids=["1", "2"])
            >>> index.ids
            ['1', '2']

        """
        with self._lock.read():
            return self._docs.live_ids()

    @property
    def n_deleted(self) -> int:
        """Number of tombstoned slots that [`compact`][] would reclaim.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["x", "y"], DeterministicFakeEmbedding(size=4))
            >>> _ = index.add_texts(["x2"], ids=[index.ids[0]])  # an upsert
            >>> index.n_deleted
            1

        """
        with self._lock.read():
            return self._docs.n_slots - self._docs.n_live

    def __len__(self) -> int:
        return self._docs.n_live

    def __contains__(self, doc_id: object) -> bool:
        with self._lock.read():
            return doc_id in self._docs

    def __repr__(self) -> str:
        return (
            f"HybridIndex({len(self)} documents, embedding={describe(self._identity())}, "
            f"dim={self.dim}, bm25={self._bm25.method!r}, dense={self._dense_params['kind']!r})"
        )

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(_NO_PICKLE)

    def __deepcopy__(self, memo: Any) -> HybridIndex:
        raise TypeError(_NO_PICKLE)

    def _identity(self) -> dict[str, Any]:
        return embedding_identity(self._embedding, self.dim)

    # ------------------------------------------------------------------ adding

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        ids: Sequence[str | None] | None = None,
        upsert: bool = True,
        batch_size: int | None = None,
        show_progress: bool = False,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and index texts, in both the dense and the BM25 index.

        The whole call is atomic: texts are embedded first (outside the lock), everything is
        validated, and only then are the three parts updated together. If anything fails, the
        index is left exactly as it was.

        Args:
            texts: The texts.
            metadatas: One metadata dict per text (copied), or ``None``.
            ids: One id per text; ``None`` or empty entries get a new UUID4 string.
            upsert: With ``True`` (LangChain's semantics) an id that already exists is
                replaced: its old version disappears from both indexes. With ``False`` an
                existing id raises ``ValueError`` and nothing changes.
            batch_size: Texts per ``embed_documents`` call (default: the index's
                ``batch_size``).
            show_progress: Show progress bars (embedding batches, then BM25 tokenization).
            **kwargs: Not accepted (a ``TypeError`` names them).

        Returns:
            The ids, in input order.

        Raises:
            ValueError: Lengths of ``metadatas``/``ids`` differ from ``texts``, an id repeats
                within the call, an id exists while ``upsert=False``, or the embedding returned
                vectors of the wrong dimension, NaN/infinite values or zero vectors.
            TypeError: A text that is not a ``str``, a metadata that is not a mapping, an id
                that is not a ``str``.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex(DeterministicFakeEmbedding(size=16))
            >>> index.add_texts(["first version"], ids=["doc-1"])
            ['doc-1']
            >>> index.add_texts(["second version"], ids=["doc-1"])  # upsert
            ['doc-1']
            >>> index.get_by_ids(["doc-1"])[0].page_content, len(index)
            ('second version', 1)
            >>> index.add_texts(["third"], ids=["doc-1"], upsert=False)
            Traceback (most recent call last):
            ...
            ValueError: ids already in the index: ['doc-1']; pass upsert=True to replace them

        """
        reject_kwargs("add_texts", kwargs, "metadatas, ids, upsert, batch_size, show_progress")
        batch = self._prepare(texts, metadatas, ids, upsert=upsert)
        if not batch[0]:
            return []
        vectors = self._embed_texts(batch[1], batch_size, show_progress)
        self._commit(*batch, vectors, upsert=upsert, show_progress=show_progress)
        return batch[0]

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Index documents; ``Document.id`` is used as the id unless ``ids=`` is given.

        Args:
            documents: The documents (never modified).
            **kwargs: ``ids``, ``upsert``, ``batch_size``, ``show_progress``, as in
                [`add_texts`][].

        Returns:
            The ids, in input order.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex(DeterministicFakeEmbedding(size=16))
            >>> ids = index.add_documents([Document("a text", id="t1"), Document("another")])
            >>> ids[0], len(ids[1])  # Document.id kept, a UUID4 generated for the other
            ('t1', 36)

        """
        texts, metadatas, ids = self._unpack_documents(documents, kwargs)
        return self.add_texts(texts, metadatas, ids=ids, **kwargs)

    def add_embeddings(
        self,
        texts: Iterable[str],
        embeddings: ArrayLike,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        ids: Sequence[str | None] | None = None,
        upsert: bool = True,
        show_progress: bool = False,
    ) -> list[str]:
        """Index texts with vectors computed beforehand (the embedding model is not called).

        Same semantics as [`add_texts`][]; ``embeddings`` is an ``(n, dim)`` array (or list of
        lists) with one row per text, validated like the model's output.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex(DeterministicFakeEmbedding(size=2))
            >>> index.add_embeddings(["east", "north"], [[1.0, 0.0], [0.0, 1.0]], ids=["e", "n"])
            ['e', 'n']
            >>> index.search_dense([0.9, 0.1], 1)[0]
            ['e']

        """
        batch = self._prepare(texts, metadatas, ids, upsert=upsert)
        if not batch[0]:
            return []
        # Validated as they are: no copy of a float32 array (the dense index stores its own).
        vectors = self._validate_vectors(embeddings, len(batch[1]), 0, None)
        self._commit(*batch, vectors, upsert=upsert, show_progress=show_progress)
        return batch[0]

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        ids: Sequence[str | None] | None = None,
        upsert: bool = True,
        batch_size: int | None = None,
        show_progress: bool = False,
        **kwargs: Any,
    ) -> list[str]:
        """Async [`add_texts`][]: embeds with ``aembed_documents``, then updates the index.

        Example:
            >>> import asyncio
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex(DeterministicFakeEmbedding(size=16))
            >>> asyncio.run(index.aadd_texts(["x"], ids=["1"]))
            ['1']

        """
        reject_kwargs("aadd_texts", kwargs, "metadatas, ids, upsert, batch_size, show_progress")
        batch = self._prepare(texts, metadatas, ids, upsert=upsert)
        if not batch[0]:
            return []
        size = self.batch_size if batch_size is None else check_k(batch_size, "batch_size")
        vectors: NDArray[np.float32] | None = None
        for start in range(0, len(batch[1]), size):
            chunk = batch[1][start : start + size]
            raw = await self._embedding.aembed_documents(chunk)
            vectors = store_batch(
                vectors, self._validate_vectors, raw, start, len(chunk), len(batch[1])
            )
        assert vectors is not None

        def commit() -> None:
            self._commit(*batch, vectors, upsert=upsert, show_progress=show_progress)

        await run_in_executor(None, commit)
        return batch[0]

    async def aadd_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Async [`add_documents`][].

        Example:
            >>> import asyncio
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex(DeterministicFakeEmbedding(size=16))
            >>> asyncio.run(index.aadd_documents([Document("x", id="1")]))
            ['1']

        """
        texts, metadatas, ids = self._unpack_documents(documents, kwargs)
        return await self.aadd_texts(texts, metadatas, ids=ids, **kwargs)

    @staticmethod
    def _unpack_documents(
        documents: Iterable[Document], kwargs: dict[str, Any]
    ) -> tuple[list[str], list[dict[str, Any]], Sequence[str | None]]:
        return unpack_documents(documents, kwargs)

    def _prepare(
        self,
        texts: Iterable[str],
        metadatas: Sequence[Mapping[str, Any] | None] | None,
        ids: Sequence[str | None] | None,
        *,
        upsert: bool,
    ) -> tuple[list[str], list[str], list[Mapping[str, Any] | None]]:
        """Validate an add's arguments; returns ``(ids, texts, metadatas)`` as lists."""
        id_list, text_list, meta_list = prepare_add(texts, metadatas, ids, upsert=upsert)
        if not upsert:
            with self._lock.read():
                self._collection.check_new(id_list)
        return id_list, text_list, meta_list

    def _embed_texts(
        self, texts: list[str], batch_size: int | None, show_progress: bool
    ) -> NDArray[np.float32]:
        size = self.batch_size if batch_size is None else check_k(batch_size, "batch_size")
        show_progress = check_bool(show_progress, "show_progress")
        return embed_in_batches(
            self._embedding.embed_documents,
            texts,
            size,
            self._validate_vectors,
            show_progress=show_progress,
        )

    def _validate_vectors(
        self, raw: Any, n: int, offset: int, expected: int | None
    ) -> NDArray[np.float32]:
        """Check one batch returned by the embedding; returns it as float32 (n, dim)."""
        model = describe(self._identity())
        return check_vectors(raw, n, offset, expected, self.dim, model, rows=_CHECK_ROWS)

    def _commit(
        self,
        ids: list[str],
        texts: list[str],
        metadatas: list[Mapping[str, Any] | None],
        vectors: NDArray[np.float32],
        *,
        upsert: bool,
        show_progress: bool,
    ) -> None:
        """Apply a validated add to the collection, atomically for readers and on failure."""
        self._collection.identity = embedding_identity(self._embedding)
        self._collection.add(
            ids, texts, metadatas, vectors, upsert=upsert, show_progress=show_progress
        )

    # ------------------------------------------------------------------ deleting, reading

    def delete(
        self, ids: Sequence[str] | None = None, *, filter: Filter | None = None, **kwargs: Any
    ) -> bool:
        """Delete documents by id and/or by metadata filter, from both indexes.

        Ids that are not in the index are ignored (LangChain's convention).

        Args:
            ids: Ids to delete.
            filter: Also delete every document whose metadata matches (see
                [`langchain_fusion.filters`][]); ``filter={}`` deletes everything.
            **kwargs: Not accepted.

        Returns:
            ``True`` if at least one document was deleted, ``False`` if none matched.

        Raises:
            ValueError: Neither ``ids`` nor ``filter`` given (``delete()`` never means "delete
                everything" here: pass ``filter={}`` for that).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(
            ...     ["a", "b", "c"], DeterministicFakeEmbedding(size=8),
            ...     metadatas=[{"src": "x"}, {"src": "y"}, {"src": "y"}], ids=["1", "2", "3"])
            >>> index.delete(["1", "missing"]), index.delete(filter={"src": "y"}), len(index)
            (True, True, 0)
            >>> index.delete(["1"])
            False

        """
        reject_kwargs("delete", kwargs, "ids and filter")
        if ids is None and filter is None:
            raise ValueError(
                "delete() needs ids=[...] or filter=...; to delete every document pass filter={}"
            )
        if isinstance(ids, str):
            raise TypeError("ids must be a list of str, got a single str")
        return self._collection.delete(ids, filter=filter)

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Documents by id, in the order of ``ids``; unknown ids are skipped.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["a", "b"], DeterministicFakeEmbedding(size=8),
            ...                                ids=["1", "2"])
            >>> [doc.id for doc in index.get_by_ids(["2", "nope", "1"])]
            ['2', '1']

        """
        if isinstance(ids, str):
            raise TypeError("ids must be a list of str, got a single str")
        return self._collection.get_by_ids(list(ids))

    def documents(self, ids: Sequence[str]) -> list[Document]:
        """Fresh ``Document`` objects (id set, metadata copied) for known ids, in order.

        Raises:
            KeyError: An id that is not in the index.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["a"], DeterministicFakeEmbedding(size=8),
            ...                                metadatas=[{"p": 1}], ids=["1"])
            >>> index.documents(["1"])
            [Document(id='1', metadata={'p': 1}, page_content='a')]

        """
        if isinstance(ids, str):
            raise TypeError("ids must be a list of str, got a single str")
        id_list = list(ids)
        found = self._documents_or_none(id_list)
        for doc_id, doc in zip(id_list, found, strict=True):
            if doc is None:
                raise KeyError(f"document id {doc_id!r} is not in the index")
        return [doc for doc in found if doc is not None]  # all of them, typed

    def _documents_or_none(self, ids: Sequence[str]) -> list[Document | None]:
        """Like `documents`, with None for an id deleted meanwhile (fusion's candidate loader)."""
        return self._collection.documents_or_none(ids)

    def _document(self, slot: int) -> Document:
        return self._collection.document(slot)

    # ------------------------------------------------------------------ low-level search API

    def embed_query(self, query: str) -> NDArray[np.float32]:
        """Embed a query with the index's model, checked (finite, right dimension).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex(DeterministicFakeEmbedding(size=16))
            >>> index.embed_query("hello").shape
            (16,)

        """
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__} {query!r}")
        return self._as_query(self._embedding.embed_query(query), "the query embedding")

    def _as_query(self, vector: ArrayLike, name: str = "query_vector") -> NDArray[np.float32]:
        return check_query_vector(vector, self.dim, lambda: describe(self._identity()), name)

    def _dense_top(
        self, queries: NDArray[np.float32], k: int, filter: Filter | None
    ) -> list[tuple[NDArray[np.int64], NDArray[np.float64]]]:
        return self._collection.dense_top(queries, k, filter)

    def _keyword_top(
        self, query: str | Mapping[str, float], k: int, filter: Filter | None
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        return self._collection.keyword_top(query, k, filter)

    def search_dense(
        self, query_vector: ArrayLike, k: int, *, filter: Filter | None = None
    ) -> tuple[list[str], NDArray[np.float64]]:
        """Top-``k`` ids by cosine similarity to ``query_vector`` (best first).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["a", "b"], DeterministicFakeEmbedding(size=8),
            ...                                ids=["1", "2"])
            >>> ids, scores = index.search_dense(index.embed_query("b"), k=2)
            >>> ids[0], round(float(scores[0]), 4)
            ('2', 1.0)

        """
        k = check_k(k)
        query = self._as_query(query_vector)
        with self._lock.read():
            slots, scores = self._dense_top(query[None, :], k, filter)[0]
            return self._docs.ids_of(slots.tolist()), scores

    def search_dense_many(
        self, query_vectors: ArrayLike, k: int, *, filter: Filter | None = None
    ) -> list[tuple[list[str], NDArray[np.float64]]]:
        """[`search_dense`][] for a batch of query vectors of shape ``(q, dim)``.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> emb = DeterministicFakeEmbedding(size=8)
            >>> index = HybridIndex.from_texts(["a", "b"], emb, ids=["1", "2"])
            >>> [ids[0] for ids, _ in index.search_dense_many(emb.embed_documents(["b", "a"]), 1)]
            ['2', '1']

        """
        k = check_k(k)
        try:
            matrix = np.asarray(query_vectors, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ValueError("query_vectors must be a 2-D array of shape (q, dim)") from exc
        if matrix.ndim != 2:
            raise ValueError(f"query_vectors must have shape (q, dim), got {matrix.shape}")
        rows = [self._as_query(row, f"query_vectors[{i}]") for i, row in enumerate(matrix)]
        if not rows:
            return []
        with self._lock.read():
            results = self._dense_top(np.stack(rows), k, filter)
            return [(self._docs.ids_of(s.tolist()), sc) for s, sc in results]

    def search_keyword(
        self, query: str | Mapping[str, float], k: int, *, filter: Filter | None = None
    ) -> tuple[list[str], NDArray[np.float64]]:
        """Top-``k`` ids by BM25 score (best first; only documents sharing a term, score > 0).

        ``query`` is a text or ``{term: weight}`` over index terms (see `expand_keyword_query`).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["red apples", "green pears"],
            ...                                DeterministicFakeEmbedding(size=8), ids=["1", "2"])
            >>> index.search_keyword("apple", k=5)[0]
            ['1']

        """
        k = check_k(k)
        with self._lock.read():
            slots, scores = self._keyword_top(query, k, filter)
            return self._docs.ids_of(slots.tolist()), scores

    def score_dense(self, query_vector: ArrayLike, ids: Sequence[str]) -> NDArray[np.float64]:
        """Exact cosine similarity of ``query_vector`` with the given documents.

        Returns:
            One score per id; NaN for an id that is not in the index.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["a"], DeterministicFakeEmbedding(size=8),
            ...                                ids=["1"])
            >>> index.score_dense(index.embed_query("a"), ["1", "zz"]).round(4)
            array([ 1., nan])

        """
        return self._collection.score_dense(self._as_query(query_vector), ids)

    def score_keyword(
        self, query: str | Mapping[str, float], ids: Sequence[str]
    ) -> NDArray[np.float64]:
        """Exact BM25 scores of the given documents for ``query`` (a text or ``{term: weight}``).

        Returns:
            One score per id; 0.0 for a document without query terms, NaN for an unknown id.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["red apples", "green pears"],
            ...                                DeterministicFakeEmbedding(size=8), ids=["1", "2"])
            >>> index.score_keyword("apples", ["2", "1", "zz"]).round(3)
            array([0.   , 0.277,   nan])

        """
        return self._collection.score_keyword(query, ids)

    def get_vectors(self, ids: Sequence[str]) -> NDArray[np.float32]:
        """Return the stored (unit-length) vectors of documents, shape ``(len(ids), dim)``.

        Raises:
            KeyError: An id that is not in the index.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["a", "b"], DeterministicFakeEmbedding(size=8),
            ...                                ids=["1", "2"])
            >>> index.get_vectors(["2"]).shape
            (1, 8)

        """
        with self._lock.read():
            slots = self._docs.slots_of(list(ids))
            if (slots < 0).any():
                missing = list(ids)[int(np.flatnonzero(slots < 0)[0])]
                raise KeyError(f"document id {missing!r} is not in the index")
            if self._dense is None:
                return np.zeros((0, 0), dtype=np.float32)
            return self._dense.get_vectors(slots)

    def expand_keyword_query(
        self, query: str, ids: Sequence[str], *, n_terms: int = 20, weight: float = 0.5
    ) -> dict[str, float]:
        """RM3 expansion of ``query`` with the terms of the documents ``ids`` (feedback).

        Returns ``{term: weight}`` for `search_keyword` / `score_keyword`; see
        [`langchain_fusion.feedback`][].

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["solar panels", "solar roofs", "wind"],
            ...     DeterministicFakeEmbedding(size=8), ids=["1", "2", "3"])
            >>> sorted(index.expand_keyword_query("solar", ["1"], n_terms=2))
            ['panel', 'solar']

        """
        texts = [d.page_content for d in self.documents(list(ids))]
        return self._bm25.expand(query, texts, n_terms=n_terms, weight=weight)

    def known_terms(self, query: str) -> list[str]:
        """Return the query's BM25 terms that occur in at least one document.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["red apples"], DeterministicFakeEmbedding(size=8))
            >>> index.known_terms("apples and oranges")
            ['appl']

        """
        with self._lock.read():
            return self._bm25.known_terms(query)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> Self:
        """Build an index from texts.

        Args:
            texts: The texts.
            embedding: The embedding model (``None``: local all-MiniLM-L6-v2).
            metadatas: One metadata dict per text.
            ids: One id per text (default: UUID4 strings).
            **kwargs: ``upsert``, ``batch_size``, ``show_progress`` go to [`add_texts`][];
                everything else to the constructor (``tokenizer``, ``k1``, ``dense_kind``...).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["x", "y"], DeterministicFakeEmbedding(size=8),
            ...                                k1=1.2, show_progress=False)
            >>> len(index)
            2

        """
        add_kwargs = {key: kwargs.pop(key) for key in _ADD_OPTIONS if key in kwargs}
        index = cls(embedding, **kwargs)
        index.add_texts(texts, metadatas, ids=ids, **add_kwargs)
        return index

    @classmethod
    def from_documents(
        cls, documents: list[Document], embedding: Embeddings | None = None, **kwargs: Any
    ) -> Self:
        """Build an index from documents (``Document.id`` kept as the id when set).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_documents([Document("x", id="a")],
            ...                                    DeterministicFakeEmbedding(size=8))
            >>> index.ids
            ['a']

        """
        texts, metadatas, ids = cls._unpack_documents(documents, kwargs)
        add_kwargs = {key: kwargs.pop(key) for key in _ADD_OPTIONS if key in kwargs}
        index = cls(embedding, **kwargs)
        index.add_texts(texts, metadatas, ids=ids, **add_kwargs)
        return index

    # ------------------------------------------------------------------ maintenance

    def compact(self) -> int:
        """Reclaim the slots of deleted and replaced documents (renumbers all three parts).

        Rebuilds the dense search structure (for HNSW this costs about as much as building it);
        searches wait meanwhile. Results do not change.

        Returns:
            The number of slots reclaimed.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["a", "b"], DeterministicFakeEmbedding(size=8),
            ...                                ids=["1", "2"])
            >>> _ = index.delete(["1"])
            >>> index.compact(), index.n_deleted, index.ids
            (1, 0, ['2'])

        """
        return self._collection.compact()

    # ------------------------------------------------------------------ persistence

    @classmethod
    def _from_snapshot(
        cls, snapshot: IndexSnapshot, embedding: Embeddings | None, *, mmap: bool
    ) -> Self:
        params = snapshot.manifest["parameters"]
        saved = params.get("embedding")
        dense_params = params.get("dense")
        if isinstance(params.get("retriever"), Mapping):
            raise ValueError(f"{snapshot.display()} holds a BM25Retriever: BM25Retriever.load")
        if not isinstance(saved, Mapping) or not isinstance(dense_params, Mapping):
            raise CorruptIndexError(
                f"{snapshot.display(snapshot.manifest_file)} is damaged: its parameters lack "
                "the embedding or dense settings"
            )
        embedding = matching_embedding(saved, embedding, stacklevel=5)  # the caller of load
        try:
            index = cls(
                embedding,
                dense_kind=dense_params["kind"],
                hnsw_m=dense_params["hnsw_m"],
                ef_construction=dense_params["ef_construction"],
                ef_search=dense_params["ef_search"],
                nlist=dense_params["nlist"],
                nprobe=dense_params["nprobe"],
                hnsw_threshold=dense_params.get("hnsw_threshold", 50_000),
                batch_size=params.get("batch_size", 256),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise CorruptIndexError(
                f"{snapshot.display(snapshot.manifest_file)} is damaged: its parameters are "
                f"incomplete or invalid ({exc!r:.200})"
            ) from exc
        index._collection = Collection.from_snapshot(
            snapshot, mmap=mmap, dense_params=index._dense_params
        )
        index._collection.identity = embedding_identity(embedding)
        index._lock = index._collection.lock
        return index


def _check_keyword_query(query: object) -> None:
    if not isinstance(query, (str, Mapping)):
        raise TypeError(
            f"query must be a str (or a {{term: weight}} mapping), got {type(query).__name__} "
            f"{query!r}"
        )
