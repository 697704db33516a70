"""``HybridIndex``: one LangChain ``VectorStore`` holding documents, a dense and a BM25 index.

The three parts share *slots*: the ``i``-th document ever added lives in slot ``i`` of the
[`DocStore`][] (id, text, metadata), of the
[`DenseIndex`][] (its vector) and of the
[`BM25Index`][] (its terms). Every add, upsert and delete is
applied to all three under one write lock, so a reader never sees a document in one and not the
others, and BM25 statistics always equal those of an index built from scratch on the live
documents.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance
from numpy.typing import ArrayLike, NDArray

from langchain_fusion.dense.embeddings import LocalEmbeddings, default_embeddings
from langchain_fusion.dense.index import DenseIndex
from langchain_fusion.docstore import DocStore
from langchain_fusion.filters import Filter, compile_filter
from langchain_fusion.lexical.bm25 import BM25Index
from langchain_fusion.lexical.tokenizer import Tokenizer
from langchain_fusion.persistence import (
    CorruptIndexError,
    Verify,
    atomic_save,
    read_manifest,
    resolve_index_dir,
)

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["HybridIndex"]

_DOCSTORE_DIR = "docstore"
_BM25_DIR = "bm25"
_DENSE_DIR = "dense"
_BUNDLED_MODEL = "all-MiniLM-L6-v2"
_MASK_CACHE_SIZE = 16
_ADD_OPTIONS = ("upsert", "batch_size", "show_progress")
# Pre-computed vectors are checked this many rows at a time (bounds the temporaries).
_CHECK_ROWS = 16_384

_NO_SLOTS: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
_NO_SCORES: NDArray[np.float64] = np.zeros(0, dtype=np.float64)


class _ReadWriteLock:
    """Many readers or one writer; writers are preferred; re-entrant within a thread.

    A thread holding the read lock may take it again (without waiting for queued writers, so
    nested reads never deadlock); a thread holding the write lock may take either lock again.
    Upgrading a read lock to a write lock is refused (it would deadlock).
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


# ------------------------------------------------------------------------------ validation


def _check_k(value: Any, name: str = "k") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def _reject_kwargs(method: str, kwargs: Mapping[str, Any], allowed: str = "filter") -> None:
    if kwargs:
        raise TypeError(
            f"HybridIndex.{method}() got unexpected keyword arguments {sorted(kwargs)!r}; "
            f"it accepts {allowed}"
        )


def _filter_key(filter: Filter) -> str | None:
    """Return a cache key for a dict filter (``None`` for callables and non-JSON values)."""
    if not isinstance(filter, dict):
        return None
    try:
        return json.dumps(filter, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------------------ embeddings


def _model_name(embedding: Embeddings) -> str | None:
    """Return the model name of an embedding object if it declares one (no model load)."""
    if isinstance(embedding, LocalEmbeddings):
        return _BUNDLED_MODEL if embedding.model_path is None else Path(embedding.model_path).name
    for attr in ("model_name", "model", "model_id", "deployment"):
        value = getattr(embedding, attr, None)
        if isinstance(value, str) and value:
            return value
    return None


def _declared_dim(embedding: Embeddings) -> int | None:
    """Return the vector dimension an embedding object declares, without loading a model."""
    if isinstance(embedding, LocalEmbeddings):
        return embedding.dimension if embedding.model_path is None else None
    for attr in ("dimensions", "dimension", "size", "dim"):
        value = getattr(embedding, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _identity(embedding: Embeddings, dim: int | None) -> dict[str, Any]:
    cls = type(embedding)
    return {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "model": _model_name(embedding),
        "dim": dim if dim is not None else _declared_dim(embedding),
    }


def _describe(identity: Mapping[str, Any]) -> str:
    name = str(identity.get("class", "?")).rsplit(".", 1)[-1]
    model = identity.get("model")
    return f"{name} (model {model!r})" if model else name


def _same_model(a: str, b: str) -> bool:
    """Compare model names up to an organisation prefix: ``org/name`` == ``name``."""
    return a.rsplit("/", 1)[-1].lower() == b.rsplit("/", 1)[-1].lower()


# ------------------------------------------------------------------------------ the store


_NO_PICKLE = (
    "a HybridIndex cannot be pickled or deep-copied (unpickling can run code, and the index may "
    "be gigabytes): save it with index.save(path) and open it with HybridIndex.load(path); to "
    "share it, pass the same object"
)


class HybridIndex(VectorStore):
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

    Scores: [`similarity_search_with_score`][] returns the cosine similarity (in [-1, 1],
    higher is better); relevance scores (``similarity_search_with_relevance_scores``) map it
    to [0, 1] as ``(1 + cosine) / 2``. [`keyword_search`][] returns BM25 scores.

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
        self._bm25 = BM25Index(tokenizer, k1=k1, b=b, method=bm25_method, delta=bm25_delta)
        self._dense_params: dict[str, Any] = {
            "kind": dense_kind,
            "hnsw_m": hnsw_m,
            "ef_construction": ef_construction,
            "ef_search": ef_search,
            "nlist": nlist,
            "nprobe": nprobe,
            "hnsw_threshold": hnsw_threshold,
        }
        DenseIndex(1, **self._dense_params)  # validates the parameters now, not at the first add
        self._dense: DenseIndex | None = None  # created by the first add (its dim is unknown)
        self.batch_size: int = _check_k(batch_size, "batch_size")
        self._docs = DocStore()
        self._lock = _ReadWriteLock()
        self._generation = 0
        self._mask_cache: dict[str, NDArray[np.bool_]] = {}
        self._mask_cache_generation = -1
        self._mask_cache_lock = threading.Lock()

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
        with self._lock.write():
            self._bm25.set_params(k1=k1, b=b)

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
            f"HybridIndex({len(self)} documents, embedding={_describe(self._identity())}, "
            f"dim={self.dim}, bm25={self._bm25.method!r}, dense={self._dense_params['kind']!r})"
        )

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(_NO_PICKLE)

    def __deepcopy__(self, memo: Any) -> HybridIndex:
        raise TypeError(_NO_PICKLE)

    def _identity(self) -> dict[str, Any]:
        return _identity(self._embedding, self.dim)

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
        _reject_kwargs("add_texts", kwargs, "metadatas, ids, upsert, batch_size, show_progress")
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
        _reject_kwargs("aadd_texts", kwargs, "metadatas, ids, upsert, batch_size, show_progress")
        batch = self._prepare(texts, metadatas, ids, upsert=upsert)
        if not batch[0]:
            return []
        size = self.batch_size if batch_size is None else _check_k(batch_size, "batch_size")
        vectors: NDArray[np.float32] | None = None
        for start in range(0, len(batch[1]), size):
            chunk = batch[1][start : start + size]
            raw = await self._embedding.aembed_documents(chunk)
            vectors = self._store_batch(vectors, raw, start, len(chunk), len(batch[1]))
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
        if isinstance(documents, Document):
            raise TypeError("documents must be a list of Document, got a single Document")
        docs = list(documents)
        for i, doc in enumerate(docs):
            if not isinstance(doc, Document):
                raise TypeError(
                    f"documents[{i}] must be a langchain Document, got {type(doc).__name__}"
                )
        ids = kwargs.pop("ids", None)
        if ids is None:
            ids = [doc.id for doc in docs]
        return [doc.page_content for doc in docs], [doc.metadata for doc in docs], ids

    def _prepare(
        self,
        texts: Iterable[str],
        metadatas: Sequence[Mapping[str, Any] | None] | None,
        ids: Sequence[str | None] | None,
        *,
        upsert: bool,
    ) -> tuple[list[str], list[str], list[Mapping[str, Any] | None]]:
        """Validate an add's arguments; returns ``(ids, texts, metadatas)`` as lists."""
        if isinstance(texts, str) or not isinstance(texts, Iterable):
            raise TypeError(
                f"texts must be an iterable of str, got {type(texts).__name__}"
                + (" (wrap a single text in a list)" if isinstance(texts, str) else "")
            )
        upsert = _check_bool(upsert, "upsert")
        text_list = list(texts)
        n = len(text_list)
        for i, text in enumerate(text_list):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__} {text!r}")
        if metadatas is None:
            meta_list: list[Mapping[str, Any] | None] = [None] * n
        else:
            meta_list = list(metadatas)
            if len(meta_list) != n:
                raise ValueError(
                    f"metadatas has {len(meta_list)} entries but texts has {n}; give one "
                    "metadata dict per text"
                )
            for i, meta in enumerate(meta_list):
                if meta is not None and not isinstance(meta, Mapping):
                    raise TypeError(
                        f"metadatas[{i}] must be a dict or None, got {type(meta).__name__}"
                    )
        if ids is None:
            id_list = [str(uuid.uuid4()) for _ in range(n)]
        else:
            if isinstance(ids, str):
                raise TypeError("ids must be a list of str, got a single str")
            raw_ids = list(ids)
            if len(raw_ids) != n:
                raise ValueError(
                    f"ids has {len(raw_ids)} entries but texts has {n}; give one id per text"
                )
            id_list = []
            for i, doc_id in enumerate(raw_ids):
                if doc_id is not None and not isinstance(doc_id, str):
                    raise TypeError(
                        f"ids[{i}] must be a str or None, got {type(doc_id).__name__} {doc_id!r}"
                    )
                id_list.append(doc_id or str(uuid.uuid4()))
            if len(set(id_list)) != n:
                repeated = sorted(i for i, count in Counter(id_list).items() if count > 1)
                raise ValueError(
                    f"ids must be distinct within one call, got duplicates {repeated[:10]!r}"
                )
        if not upsert:
            with self._lock.read():
                self._check_new(id_list)
        return id_list, text_list, meta_list

    def _check_new(self, ids: Sequence[str]) -> None:
        existing = [i for i in ids if i in self._docs]
        if existing:
            raise ValueError(
                f"ids already in the index: {existing[:10]!r}"
                + (f" and {len(existing) - 10} more" if len(existing) > 10 else "")
                + "; pass upsert=True to replace them"
            )

    def _embed_texts(
        self, texts: list[str], batch_size: int | None, show_progress: bool
    ) -> NDArray[np.float32]:
        size = self.batch_size if batch_size is None else _check_k(batch_size, "batch_size")
        show_progress = _check_bool(show_progress, "show_progress")
        starts = range(0, len(texts), size)
        if show_progress and len(starts) > 1:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="Embedding", unit="batch")
        out: NDArray[np.float32] | None = None
        for start in starts:
            chunk = texts[start : start + size]
            raw = self._embedding.embed_documents(chunk)
            out = self._store_batch(out, raw, start, len(chunk), len(texts))
        assert out is not None  # texts is never empty here
        return out

    def _store_batch(
        self, out: NDArray[np.float32] | None, raw: Any, start: int, n: int, total: int
    ) -> NDArray[np.float32]:
        """Validate one embedded batch and copy it into ``out`` (allocated at the first batch).

        Args:
            out: The ``(total, dim)`` float32 result so far, or ``None`` before the first batch.
            raw: What ``embed_documents`` returned for ``texts[start : start + n]``.
            start: Offset of the batch in the texts.
            n: Number of texts in the batch.
            total: Number of texts in the whole call.

        """
        batch = self._validate_vectors(raw, n, start, None if out is None else out.shape[1])
        if out is None:
            out = np.empty((total, batch.shape[1]), dtype=np.float32)
        out[start : start + n] = batch
        return out

    def _validate_vectors(
        self, raw: Any, n: int, offset: int, expected: int | None
    ) -> NDArray[np.float32]:
        """Check one batch returned by the embedding; returns it as float32 (n, dim)."""
        model = _describe(self._identity())
        if isinstance(raw, np.ndarray) and raw.dtype in (np.float32, np.float64) and raw.ndim == 2:
            return self._validate_array(raw, n, offset, expected, model)
        try:
            count = len(raw)
        except TypeError:
            count = -1
        if count != n:
            raise ValueError(
                f"embedding {model} returned {count} vectors for {n} texts; expected one "
                "vector per text"
            )
        if expected is None:
            expected = self.dim
        try:
            lengths = [len(row) for row in raw]
        except TypeError as exc:
            raise ValueError(
                f"embedding {model} returned something other than one vector per text for "
                f"texts[{offset}:{offset + n}]"
            ) from exc
        reference = expected if expected is not None else (lengths[0] if lengths else 0)
        for row, length in enumerate(lengths):
            if length != reference:
                held = "the index holds" if self.dim is not None else "the first text got"
                raise ValueError(
                    f"embedding {model} returned a vector of dimension {length} for "
                    f"texts[{offset + row}], but {held} vectors of dimension {reference} "
                    f"(expected {reference}, received {length})"
                )
        try:
            vectors = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"embedding {model} returned non-numeric values for texts[{offset}:{offset + n}]"
            ) from exc
        if vectors.ndim != 2 or vectors.shape[1] == 0:
            raise ValueError(
                f"embedding {model} returned an array of shape {vectors.shape} for {n} texts; "
                "expected (n_texts, dim)"
            )
        out = vectors.astype(np.float32)
        finite = np.isfinite(out).all(axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise ValueError(
                f"embedding {model} returned NaN or infinite values for texts[{offset + row}]; "
                "nothing was added"
            )
        zero = ~out.any(axis=1)
        if zero.any():
            row = int(np.flatnonzero(zero)[0])
            raise ValueError(
                f"embedding {model} returned an all-zero vector for texts[{offset + row}], "
                "which has no cosine similarity; nothing was added"
            )
        return out

    def _validate_array(
        self, raw: NDArray[Any], n: int, offset: int, expected: int | None, model: str
    ) -> NDArray[np.float32]:
        """:meth:`_validate_vectors` for a 2-D float array, row block by row block.

        Same checks and messages, but no full-size temporary: a float32 array is returned as
        it is (C-contiguous), a float64 one converted once.
        """
        if raw.shape[0] != n:
            raise ValueError(
                f"embedding {model} returned {raw.shape[0]} vectors for {n} texts; expected one "
                "vector per text"
            )
        if expected is None:
            expected = self.dim
        if raw.shape[1] == 0 or (expected is not None and raw.shape[1] != expected):
            if expected is None:
                raise ValueError(
                    f"embedding {model} returned an array of shape {raw.shape} for {n} texts; "
                    "expected (n_texts, dim)"
                )
            held = "the index holds" if self.dim is not None else "the first text got"
            raise ValueError(
                f"embedding {model} returned a vector of dimension {raw.shape[1]} for "
                f"texts[{offset}], but {held} vectors of dimension {expected} "
                f"(expected {expected}, received {raw.shape[1]})"
            )
        out = np.ascontiguousarray(raw, dtype=np.float32)
        for start in range(0, n, _CHECK_ROWS):
            block = out[start : start + _CHECK_ROWS]
            finite = np.isfinite(block).all(axis=1)
            if not finite.all():
                row = start + int(np.flatnonzero(~finite)[0])
                raise ValueError(
                    f"embedding {model} returned NaN or infinite values for "
                    f"texts[{offset + row}]; nothing was added"
                )
        for start in range(0, n, _CHECK_ROWS):
            zero = ~out[start : start + _CHECK_ROWS].any(axis=1)
            if zero.any():
                row = start + int(np.flatnonzero(zero)[0])
                raise ValueError(
                    f"embedding {model} returned an all-zero vector for texts[{offset + row}], "
                    "which has no cosine similarity; nothing was added"
                )
        return out

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
        """Apply a validated add to the three parts, atomically for readers and on failure."""
        with self._lock.write():
            if not self._aligned():
                self._realign()
            existing = self._docs.slots_of(ids)
            replaced = existing[existing >= 0]
            if replaced.size and not upsert:
                self._check_new(ids)  # raises: another thread added one of the ids meanwhile
            dense = self._dense
            if dense is None:
                dense = DenseIndex(vectors.shape[1], normalize=True, **self._dense_params)
            elif vectors.shape[1] != dense.dim:  # another thread fixed the dimension meanwhile
                raise ValueError(
                    f"embedding {_describe(self._identity())} returned vectors of dimension "
                    f"{vectors.shape[1]}, but the index holds vectors of dimension {dense.dim}"
                )
            start = self._docs.n_slots
            try:
                self._dense = dense
                # BM25 first: its build temporaries are freed before the dense index (vectors
                # and search structure, the bulk of the memory) grows.
                self._bm25.add(texts, show_progress=show_progress)
                dense.add(vectors)
                self._docs.append(ids, texts, metadatas, replace=replaced.tolist())
            except BaseException:
                self._roll_back(start)
                raise
            finally:
                self._generation += 1
            if replaced.size:  # live in all three parts (invariant), so this cannot fail
                dense.remove(replaced)
                self._bm25.remove(replaced)

    def _roll_back(self, start: int) -> None:
        """Hide every slot >= ``start`` and re-align the three parts after a failed add.

        The engines cannot shrink, so slots that reached one of them are tombstoned and the
        others are padded with tombstones to the same length. Searches then behave exactly as
        before the failed call. If even the padding fails (out of memory), the next write
        finishes it (``_realign``); searches are unaffected meanwhile.
        """
        docs = self._docs
        docs.truncate(min(start, docs.n_slots))  # also repairs columns a failed append left uneven
        for engine in (self._dense, self._bm25):
            if engine is not None and engine.n_slots > start:
                live = np.flatnonzero(engine.live_mask[start:]) + start
                if live.size:
                    engine.remove(live)
        with contextlib.suppress(Exception):
            self._realign()

    def _realign(self) -> None:
        """Pad the shorter parts with tombstoned slots so that all three have equal length."""
        docs, bm25, dense = self._docs, self._bm25, self._dense
        target = max(docs.n_slots, bm25.n_slots, dense.n_slots if dense is not None else 0)
        if docs.n_slots < target:
            docs.pad(target - docs.n_slots)
        if dense is not None and dense.n_slots < target:
            pad = np.ones((target - dense.n_slots, dense.dim), dtype=np.float32)
            dense.remove(dense.add(pad))
        if bm25.n_slots < target:
            bm25.remove(bm25.add([""] * (target - bm25.n_slots)))

    def _aligned(self) -> bool:
        dense = self._dense
        n = self._docs.n_slots
        return self._bm25.n_slots == n and (dense is None or dense.n_slots == n)

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
        _reject_kwargs("delete", kwargs, "ids and filter")
        if ids is None and filter is None:
            raise ValueError(
                "delete() needs ids=[...] or filter=...; to delete every document pass filter={}"
            )
        if isinstance(ids, str):
            raise TypeError("ids must be a list of str, got a single str")
        id_list = [] if ids is None else list(ids)
        with self._lock.write():
            if not self._aligned():
                self._realign()
            slots = self._docs.slots_of(id_list)
            selected = slots[slots >= 0]
            if filter is not None:
                selected = np.concatenate([selected, np.flatnonzero(self._allowed_mask(filter))])
            selected = np.unique(selected)
            if not selected.size:
                return False
            if self._dense is not None:
                self._dense.remove(selected)
            self._bm25.remove(selected)
            self._docs.remove(selected.tolist())
            self._generation += 1
            return True

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
        with self._lock.read():
            slots = self._docs.slots_of(list(ids))
            return [self._document(int(s)) for s in slots if s >= 0]

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
        with self._lock.read():
            slots = self._docs.slots_of(list(ids))
            return [self._document(int(s)) if s >= 0 else None for s in slots]

    def _document(self, slot: int) -> Document:
        docs = self._docs
        return Document(
            page_content=docs.text(slot), metadata=docs.metadata(slot), id=docs.id(slot)
        )

    # ------------------------------------------------------------------ filters

    def _allowed_mask(self, filter: Filter) -> NDArray[np.bool_]:
        """Boolean mask over slots: live and matching ``filter`` (caller holds a lock)."""
        key = _filter_key(filter)
        generation = self._generation
        if key is not None:
            with self._mask_cache_lock:
                if self._mask_cache_generation == generation and key in self._mask_cache:
                    return self._mask_cache[key]
        predicate = compile_filter(filter)
        if predicate is None:
            raise TypeError("filter must be a dict or a callable, got None")
        mask = self._docs.match(predicate)
        mask.flags.writeable = False
        if key is not None:
            with self._mask_cache_lock:
                if self._mask_cache_generation != generation:
                    self._mask_cache = {}
                    self._mask_cache_generation = generation
                if len(self._mask_cache) >= _MASK_CACHE_SIZE:
                    del self._mask_cache[next(iter(self._mask_cache))]
                self._mask_cache[key] = mask
        return mask

    def _mask(self, filter: Filter | None) -> NDArray[np.bool_] | None:
        return None if filter is None else self._allowed_mask(filter)

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
        try:
            arr = np.asarray(vector, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a 1-D sequence of floats") from exc
        if arr.ndim != 1 or arr.shape[0] == 0:
            raise ValueError(f"{name} must be a 1-D vector, got shape {arr.shape}")
        dim = self.dim
        if dim is not None and arr.shape[0] != dim:
            raise ValueError(
                f"{name} has dimension {arr.shape[0]}, but the index holds vectors of dimension "
                f"{dim} from {_describe(self._identity())} (expected {dim}, received "
                f"{arr.shape[0]})"
            )
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return arr

    def _dense_top(
        self, queries: NDArray[np.float32], k: int, filter: Filter | None
    ) -> list[tuple[NDArray[np.int64], NDArray[np.float64]]]:
        """Top-k live slots and cosine scores per query row (caller holds the read lock)."""
        dense = self._dense
        empty = [(_NO_SLOTS, _NO_SCORES) for _ in range(queries.shape[0])]
        if dense is None or not self._docs.n_live:
            return empty
        mask = self._mask(filter)
        if mask is not None and not mask.any():
            return empty
        # no more than the live documents: a huge k must not allocate (q, k) arrays
        slots, scores = dense.search(queries, min(k, self._docs.n_live), mask=mask)
        out = []
        for row_slots, row_scores in zip(slots, scores, strict=True):
            keep = row_slots >= 0
            out.append((row_slots[keep], row_scores[keep].astype(np.float64)))
        return out

    def _keyword_top(
        self, query: str | Mapping[str, float], k: int, filter: Filter | None
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        _check_keyword_query(query)
        if not self._docs.n_live:
            return _NO_SLOTS, _NO_SCORES
        mask = self._mask(filter)
        if mask is not None and not mask.any():
            return _NO_SLOTS, _NO_SCORES
        n_bm25 = self._bm25.n_slots
        if mask is not None and mask.shape[0] != n_bm25:  # only after a failed re-alignment
            mask = np.concatenate([mask, np.zeros(max(0, n_bm25 - mask.shape[0]), np.bool_)])
            mask = mask[:n_bm25]
        slots, scores = self._bm25.search(query, k, mask=mask)
        return slots, np.asarray(scores, dtype=np.float64)

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
        k = _check_k(k)
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
        k = _check_k(k)
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
        k = _check_k(k)
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
        query = self._as_query(query_vector)
        with self._lock.read():
            slots = self._docs.slots_of(list(ids))
            out = np.full(len(slots), np.nan)
            known = slots >= 0
            if known.any() and self._dense is not None:
                out[known] = self._dense.score(query, slots[known])
            return out

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
        _check_keyword_query(query)
        with self._lock.read():
            slots = self._docs.slots_of(list(ids))
            out = np.full(len(slots), np.nan)
            known = slots >= 0
            if known.any():
                out[known] = self._bm25.score(query, slots[known])
            return out

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

    # ------------------------------------------------------------------ VectorStore searches

    def similarity_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Return the ``k`` documents most similar to ``query`` (cosine similarity).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["a", "b"], DeterministicFakeEmbedding(size=8),
            ...                                metadatas=[{"n": 1}, {"n": 2}])
            >>> [d.page_content for d in index.similarity_search("b", k=1)]
            ['b']
            >>> [d.page_content for d in index.similarity_search("b", k=1, filter={"n": 1})]
            ['a']

        """
        _reject_kwargs("similarity_search", kwargs)
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter=filter)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Like [`similarity_search`][], with the cosine similarity (higher is better).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["a", "b"], DeterministicFakeEmbedding(size=8))
            >>> doc, score = index.similarity_search_with_score("a", k=1)[0]
            >>> doc.page_content, round(score, 4)
            ('a', 1.0)

        """
        _reject_kwargs("similarity_search_with_score", kwargs)
        k = _check_k(k)
        return self.similarity_search_with_score_by_vector(self.embed_query(query), k, filter)

    def similarity_search_by_vector(
        self, embedding: Sequence[float], k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """Return the ``k`` documents most similar to an embedding vector.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> emb = DeterministicFakeEmbedding(size=8)
            >>> index = HybridIndex.from_texts(["a", "b"], emb)
            >>> index.similarity_search_by_vector(emb.embed_query("b"), k=1)[0].page_content
            'b'

        """
        _reject_kwargs("similarity_search_by_vector", kwargs)
        return [d for d, _ in self.similarity_search_with_score_by_vector(embedding, k, filter)]

    def similarity_search_with_score_by_vector(
        self, embedding: ArrayLike, k: int = 4, filter: Filter | None = None
    ) -> list[tuple[Document, float]]:
        """Documents and cosine similarities for an embedding vector, best first.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> emb = DeterministicFakeEmbedding(size=8)
            >>> index = HybridIndex.from_texts(["a", "b"], emb)
            >>> len(index.similarity_search_with_score_by_vector(emb.embed_query("b"), k=5))
            2

        """
        k = _check_k(k)
        query = self._as_query(embedding)
        with self._lock.read():
            slots, scores = self._dense_top(query[None, :], k, filter)[0]
            return [
                (self._document(s), float(sc))
                for s, sc in zip(slots.tolist(), scores.tolist(), strict=True)
            ]

    @staticmethod
    def _cosine_to_relevance(similarity: float) -> float:
        return (1.0 + similarity) / 2.0

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Relevance in [0, 1] from cosine similarity in [-1, 1]: ``(1 + cosine) / 2``.

        LangChain's own ``_cosine_relevance_score_fn`` expects a *distance* (``1 - distance``);
        this store returns similarities, which the affine map keeps in [0, 1] (a cosine of 0,
        "unrelated", is 0.5).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> fn = HybridIndex(DeterministicFakeEmbedding(size=4))._select_relevance_score_fn()
            >>> fn(1.0), fn(0.0), fn(-1.0)
            (1.0, 0.5, 0.0)

        """
        return self._cosine_to_relevance

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Diverse results: maximal marginal relevance over the ``fetch_k`` nearest documents.

        Args:
            query: The query.
            k: Number of documents to return.
            fetch_k: Candidates fetched first (at least ``k`` are fetched).
            lambda_mult: 1 = pure relevance, 0 = maximal diversity.
            filter: Metadata filter, applied before fetching.
            **kwargs: Not accepted.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["a", "b", "c"], DeterministicFakeEmbedding(size=8))
            >>> len(index.max_marginal_relevance_search("a", k=2, fetch_k=3))
            2

        """
        _reject_kwargs("max_marginal_relevance_search", kwargs)
        return self.max_marginal_relevance_search_by_vector(
            self.embed_query(query), k, fetch_k, lambda_mult, filter=filter
        )

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: ArrayLike,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """[`max_marginal_relevance_search`][] for an embedding vector (stored vectors used).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> emb = DeterministicFakeEmbedding(size=8)
            >>> index = HybridIndex.from_texts(["a", "b"], emb)
            >>> index.max_marginal_relevance_search_by_vector(emb.embed_query("a"), k=1)[0]
            Document(id='...', metadata={}, page_content='a')

        """
        _reject_kwargs("max_marginal_relevance_search_by_vector", kwargs)
        k = _check_k(k)
        fetch_k = max(_check_k(fetch_k, "fetch_k"), k)
        if isinstance(lambda_mult, bool) or not 0.0 <= float(lambda_mult) <= 1.0:
            raise ValueError(f"lambda_mult must be in [0, 1], got {lambda_mult!r}")
        query = self._as_query(embedding, "embedding")
        with self._lock.read():
            slots, _ = self._dense_top(query[None, :], fetch_k, filter)[0]
            if not slots.size or self._dense is None:
                return []
            stored = self._dense.get_vectors(slots).astype(np.float64)
            chosen = maximal_marginal_relevance(
                query.astype(np.float64), stored.tolist(), lambda_mult=float(lambda_mult), k=k
            )
            return [self._document(int(slots[i])) for i in chosen]

    def keyword_search(
        self, query: str, k: int = 4, filter: Filter | None = None
    ) -> list[tuple[Document, float]]:
        """Return the ``k`` best documents by BM25 with their scores (score > 0 only).

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["red apples", "green pears"],
            ...                                DeterministicFakeEmbedding(size=8))
            >>> [(d.page_content, round(s, 3)) for d, s in index.keyword_search("pears")]
            [('green pears', 0.277)]

        """
        k = _check_k(k)
        with self._lock.read():
            slots, scores = self._keyword_top(query, k, filter)
            return [
                (self._document(s), float(sc))
                for s, sc in zip(slots.tolist(), scores.tolist(), strict=True)
            ]

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
        with self._lock.write():
            if not self._aligned():
                self._realign()
            reclaimed = self._docs.n_slots - self._docs.n_live
            if not reclaimed:
                return 0
            mapping = self._bm25.compact()
            if self._dense is not None:
                dense_mapping = self._dense.compact()
                if not np.array_equal(mapping, dense_mapping):
                    raise RuntimeError("the dense and BM25 indexes are out of sync")
            self._docs.compact(mapping)
            self._generation += 1
            return reclaimed

    # ------------------------------------------------------------------ persistence

    def _parameters(self) -> dict[str, Any]:
        bm25 = self._bm25
        return {
            "n_slots": self._docs.n_slots,
            "n_live": self._docs.n_live,
            "embedding": self._identity(),
            "tokenizer": bm25.tokenizer.to_config(),
            "bm25": self.bm25_params,
            "dense": dict(self._dense_params),
            "batch_size": self.batch_size,
        }

    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Save the index into a directory, atomically and without pickle.

        Layout: ``manifest.json`` (format, version, parameters, embedding identity, XXH3-128
        checksum of every file), ``docstore/`` (JSON Lines), ``bm25/`` and ``dense/`` (``.npy``
        arrays and FAISS's own index format). The new directory is written beside ``path`` and
        swapped in only when complete (see [`langchain_fusion.persistence`][]), so a failure or
        crash leaves the previous index at ``path`` loadable. Searches continue during the save;
        writes wait.

        Args:
            path: The directory. An existing index there is replaced; an existing non-empty
                directory that is not an index is refused.
            overwrite: ``False`` refuses to replace anything.

        Returns:
            The absolute path written.

        Raises:
            ValueError: A metadata value that JSON cannot represent (the message names the
                document id and key); nothing is written.
            FileExistsError: ``path`` is a file or a foreign directory (or exists while
                ``overwrite=False``).
            OSError: The filesystem failed (read-only, disk full); the previous index is intact.

        Example:
            >>> import tempfile
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> emb = DeterministicFakeEmbedding(size=8)
            >>> index = HybridIndex.from_texts(["red apples", "green pears"], emb, ids=["1", "2"])
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     _ = index.save(f"{tmp}/index")
            ...     loaded = HybridIndex.load(f"{tmp}/index", emb)
            ...     loaded.search_keyword("pears", k=1)[0]
            ['2']

        """
        overwrite = _check_bool(overwrite, "overwrite")

        def write(directory: Path) -> dict[str, Any]:
            with self._lock.read():
                (directory / _DOCSTORE_DIR).mkdir()
                self._docs.save(directory / _DOCSTORE_DIR)
                self._bm25.save(directory / _BM25_DIR)
                if self._dense is not None:
                    (directory / _DENSE_DIR).mkdir()
                    self._dense.save(directory / _DENSE_DIR)
                return self._parameters()

        return atomic_save(path, write, overwrite=overwrite)

    @classmethod
    def load(
        cls,
        path: str | Path,
        embedding: Embeddings | None = None,
        *,
        mmap: bool = True,
        verify: Verify = "full",
    ) -> Self:
        """Open an index saved by [`save`][].

        Everything is checked before any data file is parsed: the format name and version, and
        every file's size and checksum against the manifest (XXH3-128; SHA-256 for indexes saved
        in format version 1). Nothing is unpickled or executed. If ``path`` is missing because a
        save was interrupted between its two renames, the previous version is recovered (with a
        warning).

        Args:
            path: The index directory.
            embedding: The model the index was built with. ``None`` works for indexes built
                with the default local model; otherwise pass the same model (its dimension and,
                when both are known, model name are checked). The model is not called here.
            mmap: Memory-map the large arrays and the document texts (opening is fast and
                memory is shared with the page cache); ``False`` reads everything into memory.
                Either way the loaded index accepts adds and deletes; files are never modified.
            verify: ``"full"`` (default) checksums every byte (XXH3-128, files hashed in
                parallel: the load of a 1M-chunk, 2.4 GB index takes 0.28 s on 2 cores with a
                warm page cache); ``"size"`` only checks file sizes (0.11 s for the same
                index), for large indexes on trusted storage.

        Raises:
            FileNotFoundError: No index at ``path``.
            ValueError: Not a langchain-fusion index, an unsupported format version, or an
                embedding that does not match the saved one.
            CorruptIndexError: A truncated, modified or missing file (named in the message).

        Example:
            >>> import tempfile
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> index = HybridIndex.from_texts(["x"], DeterministicFakeEmbedding(size=8))
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     _ = index.save(tmp)
            ...     HybridIndex.load(tmp, DeterministicFakeEmbedding(size=4))
            Traceback (most recent call last):
            ...
            ValueError: embedding dimension mismatch: the index holds 8-dimensional vectors from DeterministicFakeEmbedding, but the embedding passed (DeterministicFakeEmbedding) produces 4-dimensional vectors

        """  # noqa: E501
        mmap = _check_bool(mmap, "mmap")
        directory = resolve_index_dir(path)
        manifest = read_manifest(directory, verify=verify)
        params = manifest["parameters"]
        try:
            embedding = cls._matching_embedding(params["embedding"], embedding)
            bm25_params = params["bm25"]
            dense_params = params["dense"]
            index = cls(
                embedding,
                tokenizer=Tokenizer.from_config(params["tokenizer"]),
                k1=bm25_params["k1"],
                b=bm25_params["b"],
                bm25_method=bm25_params["method"],
                bm25_delta=bm25_params["delta"],
                dense_kind=dense_params["kind"],
                hnsw_m=dense_params["hnsw_m"],
                ef_construction=dense_params["ef_construction"],
                ef_search=dense_params["ef_search"],
                nlist=dense_params["nlist"],
                nprobe=dense_params["nprobe"],
                hnsw_threshold=dense_params.get("hnsw_threshold", 50_000),
                batch_size=params.get("batch_size", 256),
            )
        except (KeyError, TypeError) as exc:
            raise CorruptIndexError(
                f"the manifest of {str(directory)!r} has incomplete parameters ({exc!r})"
            ) from exc
        try:
            index._docs = DocStore.load(directory / _DOCSTORE_DIR, mmap=mmap)
            index._bm25 = BM25Index.load(directory / _BM25_DIR, mmap=mmap)
            if (directory / _DENSE_DIR).is_dir():
                index._dense = DenseIndex.load(directory / _DENSE_DIR, mmap=mmap)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            # only reachable when verify="size" skipped the checksums that catch this
            raise CorruptIndexError(
                f"a file of the index at {str(directory)!r} is damaged ({exc}); copy the index "
                "again or rebuild it (verify='full', the default, names the damaged file)"
            ) from exc
        index._check_consistent(directory, params)
        return index

    def _check_consistent(self, directory: Path, params: Mapping[str, Any]) -> None:
        docs, bm25, dense = self._docs, self._bm25, self._dense
        n = docs.n_slots
        parts = {"docstore": n, "bm25": bm25.n_slots}
        if dense is not None:
            parts["dense"] = dense.n_slots
        elif n:
            parts["dense"] = 0
        if set(parts.values()) != {params.get("n_slots", n)}:
            raise CorruptIndexError(
                f"the index at {str(directory)!r} is inconsistent: slot counts {parts} "
                f"(manifest: {params.get('n_slots')})"
            )
        live = docs.live_mask
        if not np.array_equal(live, bm25.live_mask) or (
            dense is not None and not np.array_equal(live, dense.live_mask)
        ):
            raise CorruptIndexError(
                f"the index at {str(directory)!r} is inconsistent: the live documents differ "
                "between the docstore and the engines"
            )

    @staticmethod
    def _matching_embedding(saved: Mapping[str, Any], embedding: Embeddings | None) -> Embeddings:
        """Return the embedding for a loaded index, checked against the saved identity."""
        saved_dim, saved_model = saved.get("dim"), saved.get("model")
        if embedding is None:
            if str(saved.get("class", "")).endswith(".LocalEmbeddings") and (
                saved_model == _BUNDLED_MODEL
            ):
                return default_embeddings()
            raise ValueError(
                f"this index was built with {_describe(saved)}"
                + (f" ({saved_dim}-dimensional vectors)" if saved_dim else "")
                + "; pass the same model: HybridIndex.load(path, embedding=...), or "
                "--model DIR on the command line for a local model directory"
            )
        if not isinstance(embedding, Embeddings):
            raise TypeError(
                f"embedding must be a LangChain Embeddings object or None, got "
                f"{type(embedding).__name__}"
            )
        given = _identity(embedding, None)
        if saved_dim and given["dim"] and saved_dim != given["dim"]:
            raise ValueError(
                f"embedding dimension mismatch: the index holds {saved_dim}-dimensional vectors "
                f"from {_describe(saved)}, but the embedding passed ({_describe(given)}) "
                f"produces {given['dim']}-dimensional vectors"
            )
        if saved_model and given["model"] and not _same_model(saved_model, given["model"]):
            raise ValueError(
                f"embedding model mismatch: the index was built with {_describe(saved)}, but "
                f"the embedding passed is {_describe(given)}; vectors of different models are "
                "not comparable"
            )
        lineage = {f"{c.__module__}.{c.__qualname__}" for c in type(embedding).__mro__}
        if not (saved_model and given["model"]) and saved.get("class") not in lineage:
            warnings.warn(
                f"the index was built with {_describe(saved)} and is loaded with "
                f"{_describe(given)}; the model names cannot be compared, so make sure it is the "
                "same model: vectors of different models are not comparable",
                UserWarning,
                stacklevel=3,
            )
        return embedding


def _check_keyword_query(query: object) -> None:
    if not isinstance(query, (str, Mapping)):
        raise TypeError(
            f"query must be a str (or a {{term: weight}} mapping), got {type(query).__name__} "
            f"{query!r}"
        )
