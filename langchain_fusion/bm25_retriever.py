"""A fast, drop-in replacement for ``langchain_community``'s ``BM25Retriever``.

Same constructors (``from_texts`` / ``from_documents``, ``bm25_params``), the same ``k`` and
``docs`` fields, documents given without an id come back with ``id=None``, and a ``vectorizer``
view answers what tests of the community retriever read (``doc_len``, ``epsilon``,
``get_scores``). But:

* better ranking: a real tokenizer (lowercase, stopwords, Snowball stemming) instead of
  ``str.split`` -- BEIR SciFact nDCG@10 0.69 instead of 0.52;
* fast: a sparse numpy index answers a query over 100k documents in about a millisecond, where
  rank-bm25 scores every document in Python;
* scores (:meth:`BM25Retriever.search_with_scores`), complete scoring of arbitrary documents for
  score fusion (:meth:`BM25Retriever.score_documents`), metadata filters, incremental
  :meth:`~BM25Retriever.add_documents` / :meth:`~BM25Retriever.delete` with exact statistics,
  and pickle-free, atomic, checksummed :meth:`~BM25Retriever.save` / :meth:`~BM25Retriever.load`.

It is a thin LangChain face over a keyword-only
[`Collection`][langchain_fusion.collection.Collection], the same core (documents, BM25 index,
lock, filter masks, persistence) as [`HybridIndex`][langchain_fusion.HybridIndex].
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import uuid
import warnings
from collections.abc import Container, Iterable, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from numpy.typing import NDArray
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from langchain_fusion.bm25_compat import BM25Vectorizer
from langchain_fusion.collection import Collection
from langchain_fusion.docstore import check_metadata, copy_metadata
from langchain_fusion.filters import Filter
from langchain_fusion.lexical import BM25Index, Tokenizer
from langchain_fusion.locking import ReadWriteLock
from langchain_fusion.persistence import (
    MANIFEST_FILE,
    CorruptIndexError,
    IndexSnapshot,
    Verify,
    load_consistent,
)

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["BM25Retriever", "BM25Vectorizer", "content_id"]

_LEGACY_FORMAT = "langchain-fusion/bm25-retriever"
_LEGACY_DOCS_FILE = "documents.json"
_LEGACY_INDEX_DIR = "index"
_FACE = "BM25Retriever"
_BM25_PARAM_KEYS = ("k1", "b", "method", "delta", "epsilon")
_VARIANTS = {"okapi": "lucene", "plus": "bm25+", "l": "bm25l"}
_DEFAULT_EPSILON = 0.25
# Set by this module's constructors around model construction: the collection is built and the
# documents are its presented copies. (Pydantic drops validation context for models with a
# custom __init__, as LangChain's are, hence a context variable.)
_PREPARED: ContextVar[_State | None] = ContextVar("bm25_prepared_state", default=None)


def content_id(document: Document) -> str:
    """Return a stable id derived from a document's content and metadata (a UUID string).

    Example:
        >>> content_id(Document("hello")) == content_id(Document("hello"))
        True
        >>> content_id(Document("hello")) == content_id(Document("hello", metadata={"p": 1}))
        False

    """
    payload = json.dumps(
        [document.page_content, document.metadata], sort_keys=True, default=repr
    ).encode("utf-8")
    digest = hashlib.sha256(payload).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))


def _copy_document(document: Document, doc_id: str | None) -> Document:
    return Document(
        page_content=document.page_content, metadata=copy_metadata(document.metadata), id=doc_id
    )


def _is_derived(key: str, text: str, metadata: Mapping[str, Any]) -> bool:
    """Whether ``key`` was made from the document's content (no id was given)."""
    base = content_id(Document(page_content=text, metadata=dict(metadata)))
    return key == base or key.startswith(base + "-")


def _pickle_error() -> TypeError:
    return TypeError(
        "BM25Retriever cannot be pickled (loading a pickle can run arbitrary code): persist it "
        "with retriever.save(path) and BM25Retriever.load(path), or rebuild it with "
        "BM25Retriever.from_documents(retriever.docs, ...); copy.deepcopy(retriever) makes an "
        "independent in-memory copy"
    )


class _State:
    """What a retriever and its ``model_copy()`` views share: one collection and its views.

    ``docs`` is the very list of the ``docs`` field (changed only in place, so every view sees
    the same list): the live documents in slot order, with ``id=None`` for documents stored
    under a content-derived key. ``derived`` memoizes which keys are content-derived;
    ``contents`` maps a text to its first live slot (complete scoring of id-less documents).
    ``copy.deepcopy`` gives an independent state (new collection, new lock).
    """

    __slots__ = ("collection", "contents", "derived", "docs", "epsilon")

    def __init__(self, collection: Collection, epsilon: float = _DEFAULT_EPSILON) -> None:
        self.collection = collection
        self.epsilon = epsilon
        self.derived: dict[str, bool] = {}
        self.contents: tuple[int, dict[str, int]] | None = None
        self.docs: list[Document] = []

    @property
    def lock(self) -> ReadWriteLock:
        return self.collection.lock

    def is_derived(self, slot: int) -> bool:
        store = self.collection.docs
        key = store.id(slot)
        known = self.derived.get(key)
        if known is None:
            known = _is_derived(key, store.text(slot), store.metadata_view(slot))
            self.derived[key] = known
        return known

    def present(self, slot: int) -> Document:
        """Return a fresh document for a slot, ``id=None`` when content-derived (lock held)."""
        doc = self.collection.document(slot)
        if self.is_derived(slot):
            doc.id = None
        return doc

    def rebuild(self) -> None:
        """Refill ``docs`` in place from the collection (lock held)."""
        live = np.flatnonzero(self.collection.docs.live_mask).tolist()
        self.docs[:] = [self.present(s) for s in live]

    def content_slots(self) -> dict[str, int]:
        """Return text -> first live slot (rebuilt after a write; lock held)."""
        collection = self.collection
        cached = self.contents
        if cached is None or cached[0] != collection.generation:
            table: dict[str, int] = {}
            store = collection.docs
            for slot in np.flatnonzero(store.live_mask).tolist():
                table.setdefault(store.text(slot), slot)
            cached = (collection.generation, table)
            self.contents = cached
        return cached[1]

    def __deepcopy__(self, memo: dict[int, Any]) -> _State:
        with self.lock.read():
            new = _State(copy.deepcopy(self.collection, memo), self.epsilon)
            new.derived = dict(self.derived)
            new.docs = copy.deepcopy(self.docs, memo)  # via memo: the copy's ``docs`` field
            return new

    def __getstate__(self) -> None:
        raise _pickle_error()


class BM25Retriever(BaseRetriever):
    """BM25 keyword retriever over an in-memory :class:`~langchain_fusion.lexical.BM25Index`.

    Build it with :meth:`from_texts` / :meth:`from_documents` (or ``BM25Retriever(docs=[...])``
    with default BM25 settings). Stored documents are copies; a document given without an id is
    stored under a stable hash of its content and metadata (returned by :meth:`add_documents`,
    accepted by :meth:`delete`) and comes back with ``id=None``, as from ``langchain_community``
    (fusion matches it with other retrievers' results by its text); returned documents are
    fresh copies, their metadata untouched. The copies are independent down to nested values:
    changing ``doc.metadata["tags"]`` of a returned document, or of a document after passing it
    in, never changes what the retriever stores or filters on.

    Copies: ``model_copy()`` (used by LangChain and this package to change ``k`` or ``filter``
    per call) is cheap and shares the documents and the index with the original -- a view with
    its own settings: documents added or deleted through either are seen by both.
    ``copy.deepcopy`` makes an independent retriever. Pickling raises a ``TypeError``: use
    :meth:`save` / :meth:`load`. Thread-safe: searches and updates, through the retriever or any
    of its ``model_copy()`` copies, are serialised by one lock.

    Unknown constructor arguments (``k=`` misspelt ``kk=``...) raise an error naming the
    accepted ones.

    A query without any indexed term (only stopwords, or words no document contains) returns no
    documents: a BM25 score of 0 is not a match. ``langchain_community``'s version returns ``k``
    arbitrary documents then (every score is 0 and rank_bm25 keeps the first ones).

    Example:
        >>> retriever = BM25Retriever.from_texts(
        ...     ["Cats are small felines.", "Dogs bark at cats.", "Parrots can talk."],
        ...     metadatas=[{"kind": "cat"}, {"kind": "dog"}, {"kind": "bird"}],
        ...     k=2,
        ... )
        >>> [d.page_content for d in retriever.invoke("cat")]
        ['Cats are small felines.', 'Dogs bark at cats.']
        >>> [d.metadata["kind"] for d in retriever.invoke("cat", filter={"kind": "dog"})]
        ['dog']
        >>> [(d.page_content, round(s, 3)) for d, s in retriever.search_with_scores("parrot")]
        [('Parrots can talk.', 0.442)]

    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    docs: list[Document] = Field(default_factory=list, repr=False)
    """The live documents (copies; ``id=None`` for those given without one), in insertion order.
    Read-only: change them with :meth:`add_documents` / :meth:`delete`, which keep the index in
    sync."""
    k: int = Field(default=4, ge=1)
    """Number of documents to return."""
    filter: Any = None
    """Default metadata filter (dict or callable, see :mod:`langchain_fusion.filters`)."""
    index: BM25Index | None = Field(default=None, repr=False)
    """The BM25 index; built from ``docs`` with default settings when not given."""

    _state: _State = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(key) for key in data if key not in cls.model_fields)
            if unknown:
                raise ValueError(
                    f"unknown argument(s) {unknown} for {cls.__name__}; accepted: "
                    f"{', '.join(cls.model_fields)}"
                )
        return data

    @model_validator(mode="after")
    def _build(self) -> BM25Retriever:
        prepared = _PREPARED.get()
        if prepared is not None:  # from our own constructors: the collection is built
            prepared.docs = self.docs  # the field's own list, kept in sync in place
            self._state = prepared
            return self
        docs = list(self.docs)
        for i, doc in enumerate(docs):
            if doc.metadata:
                check_metadata(doc.metadata, f"docs[{i}].metadata")
        keys, derived = _assign_ids(docs, None, taken=())
        collection = Collection()
        texts = [d.page_content for d in docs]
        metas = [d.metadata for d in docs]
        if self.index is None:
            collection.add(keys, texts, metas, None)
        else:
            collection.adopt(self.index, keys, texts, metas)
        state = _State(collection)
        state.derived.update(zip(keys, derived, strict=True))
        state.rebuild()
        self.docs = state.docs
        self.index = collection.bm25
        state.docs = self.docs  # the field's own list (in case assignment copied it)
        self._state = state
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("docs", "index"):
            private = getattr(self, "__pydantic_private__", None)
            if private and "_state" in private:
                raise AttributeError(
                    f"{name} is read-only: change the documents with add_documents() / delete()"
                )
        super().__setattr__(name, value)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Copy the retriever; see the class docstring (shallow copies share the documents).

        ``docs`` and ``index`` cannot be replaced through ``update``.
        """
        if update and ("docs" in update or "index" in update):
            raise ValueError(
                "model_copy(update=...) cannot replace docs or index; build a new retriever "
                "with from_documents() instead"
            )
        return super().model_copy(update=update, deep=deep)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        with self._state.lock.read():  # a consistent snapshot of documents and index
            return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        raise _pickle_error()

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        metadatas: Iterable[dict[str, Any]] | None = None,
        ids: Iterable[str] | None = None,
        bm25_params: dict[str, Any] | None = None,
        *,
        k: int | None = None,
        tokenizer: Tokenizer | None = None,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
        bm25_variant: str | None = None,
        show_progress: bool = False,
        **kwargs: Any,
    ) -> BM25Retriever:
        """Build a retriever from texts.

        Args:
            texts: The texts.
            metadatas: One metadata dict per text.
            ids: One id per text; default: a stable hash of content and metadata.
            bm25_params: For compatibility with ``langchain_community`` (also its position, the
                fourth): ``k1``, ``b``, ``method``, ``delta`` override the arguments below;
                ``epsilon`` (``rank_bm25``'s floor for negative IDFs) is accepted and reported
                by ``vectorizer.epsilon`` but changes nothing: this package's IDFs are never
                negative (see [`BM25Vectorizer`][langchain_fusion.bm25_compat.BM25Vectorizer]).
            k: Number of documents to return (default 4). Given explicitly, it also caps what
                this retriever contributes when a ``FusionRetriever`` wraps it, as in
                ``EnsembleRetriever``; left out, the fusion's ``fetch_k`` sets the depth.
            tokenizer: The tokenizer (default: lowercase, English stopwords, Snowball stemming).
            k1: BM25 term-frequency saturation.
            b: BM25 length normalization.
            method: BM25 variant (``"lucene"``, ``"robertson"``, ``"atire"``, ``"bm25l"``,
                ``"bm25+"``).
            bm25_variant: ``langchain_community``'s names: ``"okapi"`` (``lucene``: rank_bm25's
                BM25Okapi differs only by an IDF that can go negative, which it floors with
                ``epsilon``; Lucene's never does), ``"plus"`` (``bm25+``), ``"l"``
                (``bm25l``); overrides ``method``.
            show_progress: Show a progress bar while indexing.
            **kwargs: Other fields: ``filter``, ``tags``, ``metadata``, ``name``.

        Raises:
            ValueError: Lengths of ``texts``, ``metadatas`` and ``ids`` differ, ids repeat, or
                a parameter is out of range.
            TypeError: ``preprocess_func`` was passed (use ``tokenizer``), an unknown keyword
                argument was passed (the message lists the accepted ones), or a text is not a
                str.

        Example:
            >>> r = BM25Retriever.from_texts(["a red fox", "a blue whale"], ids=["f", "w"], k=1)
            >>> r.invoke("whales")[0].id
            'w'

        """
        if isinstance(texts, str):
            raise TypeError("texts must be a list of str, got a single str")
        cls._check_fields("from_texts", kwargs)
        texts = list(texts)
        metas = [{} for _ in texts] if metadatas is None else [copy_metadata(m) for m in metadatas]
        id_list: list[str | None] | None = None if ids is None else list(ids)
        return cls._create(
            texts,
            metas,
            id_list,
            k=k,
            tokenizer=tokenizer,
            params={"k1": k1, "b": b, "method": _method(method, bm25_variant)},
            show_progress=show_progress,
            bm25_params=bm25_params,
            fields=kwargs,
        )

    @classmethod
    def _check_fields(cls, constructor: str, fields: Mapping[str, Any]) -> None:
        """Reject keyword arguments that are neither a constructor parameter nor a field."""
        if "preprocess_func" in fields:
            raise TypeError(
                "preprocess_func is not supported: pass tokenizer=Tokenizer(...) (lowercase, "
                "stopwords, stemmer, token_pattern) instead"
            )
        allowed = [f for f in cls.model_fields if f not in ("docs", "index", "k")]
        unknown = sorted(str(key) for key in fields if key not in allowed)
        if unknown:
            params = ["k", "tokenizer", "k1", "b", "method", "bm25_variant", "show_progress"]
            params.append("bm25_params")
            raise TypeError(
                f"{cls.__name__}.{constructor}() got unexpected keyword argument(s) {unknown}; "
                f"accepted: {', '.join(params + allowed)}"
            )

    @classmethod
    def _create(
        cls,
        texts: list[str],
        metas: list[dict[str, Any]],
        ids: list[str | None] | None,
        *,
        k: int | None,
        tokenizer: Tokenizer | None,
        params: dict[str, Any],
        show_progress: bool,
        bm25_params: dict[str, Any] | None,
        fields: dict[str, Any],
    ) -> BM25Retriever:
        if len(metas) != len(texts):
            raise ValueError(
                f"metadatas must have one dict per text: got {len(metas)} for {len(texts)} texts"
            )
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"ids must have one id per text: got {len(ids)} for {len(texts)}")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}")
        for i, meta in enumerate(metas):
            if meta:
                check_metadata(meta, f"metadatas[{i}]")
        epsilon = _DEFAULT_EPSILON
        if bm25_params:
            unknown = sorted(set(bm25_params) - set(_BM25_PARAM_KEYS))
            if unknown:
                raise ValueError(
                    f"bm25_params has unsupported keys {unknown}; allowed: {list(_BM25_PARAM_KEYS)}"
                )
            bm25_params = dict(bm25_params)
            epsilon = _check_epsilon(bm25_params.pop("epsilon", epsilon))
            params = {**params, **bm25_params}
        collection = Collection(
            tokenizer=tokenizer,
            k1=params["k1"],
            b=params["b"],
            bm25_method=params["method"],
            bm25_delta=params.get("delta", 0.5),
        )
        docs = [Document(page_content=t, metadata=m) for t, m in zip(texts, metas, strict=True)]
        keys, derived = _assign_ids(docs, ids, taken=())
        collection.add(keys, texts, metas, None, show_progress=show_progress)
        state = _State(collection, epsilon)
        state.derived.update(zip(keys, derived, strict=True))
        state.rebuild()
        if k is not None:  # only a k its user gave counts as set (model_fields_set)
            fields = {**fields, "k": k}
        return cls._prepared(state, **fields)

    @classmethod
    def from_documents(
        cls,
        documents: Iterable[Document],
        *,
        k: int | None = None,
        tokenizer: Tokenizer | None = None,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
        bm25_variant: str | None = None,
        show_progress: bool = False,
        bm25_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> BM25Retriever:
        """Build a retriever from documents (their ids are kept; see :meth:`from_texts`).

        Example:
            >>> docs = [Document("mitochondria make energy", id="m"), Document("ribosomes")]
            >>> r = BM25Retriever.from_documents(docs)
            >>> r.invoke("energy")[0].id, r.docs[1].id  # given without an id: None
            ('m', None)

        """
        cls._check_fields("from_documents", kwargs)
        docs = list(documents)
        for i, doc in enumerate(docs):
            if not isinstance(doc, Document):
                raise TypeError(f"documents[{i}] must be a Document, got {type(doc).__name__}")
        return cls._create(
            [d.page_content for d in docs],
            [copy_metadata(d.metadata) for d in docs],
            [d.id for d in docs],
            k=k,
            tokenizer=tokenizer,
            params={"k1": k1, "b": b, "method": _method(method, bm25_variant)},
            show_progress=show_progress,
            bm25_params=bm25_params,
            fields=kwargs,
        )

    # ------------------------------------------------------------------ properties

    @property
    def documents(self) -> list[Document]:
        """The live documents (same as ``docs``)."""
        return self._state.docs

    @property
    def bm25_index(self) -> BM25Index:
        """The BM25 index (never ``None`` after construction)."""
        return self._state.collection.bm25

    @property
    def collection(self) -> Collection:
        """The keyword-only [`Collection`][langchain_fusion.collection.Collection] behind it."""
        return self._state.collection

    @property
    def vectorizer(self) -> BM25Vectorizer:
        """A ``rank_bm25``-compatible view (``doc_len``, ``epsilon``...): see `BM25Vectorizer`.

        Example:
            >>> BM25Retriever.from_texts(["a b"], bm25_params={"epsilon": 10}).vectorizer.epsilon
            10.0

        """
        state = self._state
        return BM25Vectorizer(state.collection, state.docs, state.epsilon)

    def __len__(self) -> int:
        return len(self._state.docs)

    # ------------------------------------------------------------------ searching

    def _derived_ids(self, docs: Sequence[Document]) -> list[bool]:
        """Per document, whether its id was made from its content (fusion matches it by text).

        Returned documents carry ``id=None`` then, so this is ``True`` only for a document that
        carries such a key explicitly (an id returned by `add_documents`).
        """
        state = self._state
        out = []
        for doc in docs:
            if doc.id is None:
                out.append(False)
                continue
            known = state.derived.get(doc.id)
            if known is None:
                known = _is_derived(doc.id, doc.page_content, doc.metadata)
            out.append(known)
        return out

    def search_with_scores(
        self,
        query: str,
        k: int | None = None,
        filter: Filter | None = None,
    ) -> list[tuple[Document, float]]:
        """Return the best documents with their BM25 scores, best first.

        Args:
            query: The query.
            k: Number of results (default: the ``k`` field).
            filter: Metadata filter (default: the ``filter`` field); only matching documents
                are returned.

        Returns:
            ``(document, score)`` pairs, only documents with a positive score, at most ``k``.
            The documents are independent copies (metadata included).

        Example:
            >>> r = BM25Retriever.from_texts(["apple pie", "apple juice", "pear"])
            >>> [(d.page_content, round(s, 3)) for d, s in r.search_with_scores("apple", k=1)]
            [('apple pie', 0.172)]

        """
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        k = self.k if k is None else k
        state = self._state
        with state.lock.read():
            slots, scores = state.collection.keyword_top(
                query, k, self.filter if filter is None else filter
            )
            return [
                (state.present(s), float(sc))
                for s, sc in zip(slots.tolist(), scores.tolist(), strict=True)
            ]

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        filter: Filter | None = None,
    ) -> list[Document]:
        return [doc for doc, _ in self.search_with_scores(query, k=k, filter=filter)]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        filter: Filter | None = None,
    ) -> list[Document]:
        pairs = await run_in_executor(None, self.search_with_scores, query, k, filter)
        return [doc for doc, _ in pairs]

    def score_documents(self, query: str, documents: Sequence[Document]) -> NDArray[np.float64]:
        """Score given documents against a query (complete scoring for score fusion).

        A document is matched by ``Document.id``, else by exact ``page_content``.

        Args:
            query: The query.
            documents: Any documents.

        Returns:
            Their BM25 scores (0.0 when no query term occurs), NaN for a document that is not
            in the retriever.

        Example:
            >>> r = BM25Retriever.from_texts(["apple pie", "pear tart"], ids=["a", "p"])
            >>> r.score_documents("apple", [Document("pear tart"), Document("?", id="a"),
            ...                             Document("kiwi")]).round(3).tolist()
            [0.0, 0.277, nan]

        """
        out = np.full(len(documents), np.nan, dtype=np.float64)
        state = self._state
        with state.lock.read():
            store = state.collection.docs
            by_id = store.slots_of([d.id if d.id is not None else "" for d in documents])
            found: list[int] = []
            slots: list[int] = []
            for i, doc in enumerate(documents):
                slot = int(by_id[i]) if doc.id is not None else -1
                if slot < 0:
                    slot = state.content_slots().get(doc.page_content, -1)
                if slot >= 0:
                    found.append(i)
                    slots.append(slot)
            if found:
                out[found] = state.collection.bm25.score(query, np.array(slots, dtype=np.int64))
        return out

    # ------------------------------------------------------------------ updating

    def add_documents(
        self,
        documents: Sequence[Document],
        *,
        ids: Sequence[str] | None = None,
        show_progress: bool = False,
    ) -> list[str]:
        """Add documents; an id that is already present replaces that document (upsert).

        The retriever stores copies (nested metadata included): changing the documents later
        does not change it.

        Args:
            documents: The documents.
            ids: Their ids (default: ``Document.id``, else a stable content hash: the document
                is stored and can be deleted under it, and comes back with ``id=None``).
            show_progress: Show a progress bar while indexing.

        Returns:
            The ids (keys) of the added documents.

        Raises:
            ValueError: Metadata with a non-str key, a cycle or extreme nesting (the path of
                the bad key is named), or ids of the wrong length or repeated.

        Example:
            >>> r = BM25Retriever.from_texts(["old text"], ids=["x"])
            >>> r.add_documents([Document("new text", id="x"), Document("more")])[0]
            'x'
            >>> [d.page_content for d in r.docs]
            ['new text', 'more']

        """
        docs = list(documents)
        for i, doc in enumerate(docs):
            if not isinstance(doc, Document):
                raise TypeError(f"documents[{i}] must be a Document, got {type(doc).__name__}")
            if doc.metadata:
                check_metadata(doc.metadata, f"documents[{i}].metadata")
        if ids is not None and len(ids) != len(docs):
            raise ValueError(f"ids must have one id per document: got {len(ids)} for {len(docs)}")
        explicit = list(ids) if ids is not None else [d.id for d in docs]
        copies = [_copy_document(d, None) for d in docs]  # outside the lock
        state = self._state
        collection = state.collection
        with collection.lock.write():
            store = collection.docs
            keys, derived = _assign_ids(copies, explicit, taken=store)
            replaced = any(key in store for key in keys)
            before = store.n_slots
            collection.add(
                keys,
                [d.page_content for d in copies],
                [d.metadata for d in copies],
                None,
                show_progress=show_progress,
            )
            state.derived.update(zip(keys, derived, strict=True))
            if replaced:
                state.rebuild()
            else:
                state.docs.extend(state.present(s) for s in range(before, store.n_slots))
            return keys

    def delete(self, ids: Sequence[str]) -> bool:
        """Delete documents by id; BM25 statistics update exactly.

        Ids that are not in the retriever are ignored (LangChain's convention, as
        :meth:`HybridIndex.delete <langchain_fusion.HybridIndex.delete>`).

        Returns:
            ``True`` if at least one document was deleted, ``False`` if none matched.

        Example:
            >>> r = BM25Retriever.from_texts(["one fish", "two fish"], ids=["1", "2"])
            >>> r.delete(["1", "missing"])
            True
            >>> [d.id for d in r.invoke("fish")]
            ['2']
            >>> r.delete(["1"])
            False

        """
        if isinstance(ids, str):
            raise TypeError("ids must be a list of str, got a single str")
        wanted = [str(i) for i in ids]
        collection = self._state.collection
        with collection.lock.write():
            if not collection.delete(wanted):
                return False
            bm25 = collection.bm25
            if bm25.n_slots > 1024 and bm25.n_live < bm25.n_slots // 2:
                collection.compact()
            self._state.rebuild()
            return True

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Save atomically into a checksummed directory: the format of ``HybridIndex.save``.

        ``manifest.json`` (format, version, parameters including ``k``, ``filter`` and
        ``epsilon``, and the XXH3-128 checksum of every file), ``docstore/`` and ``bm25/``. The
        new directory is written beside ``path`` and swapped in only when complete, so a
        failure or a killed save leaves the previous version loadable; nothing is pickled.

        Args:
            path: The directory (an existing retriever or index there is replaced; a
                non-empty directory that is neither is refused).
            overwrite: ``False`` refuses to replace anything.

        Returns:
            The absolute path written.

        Raises:
            ValueError: The ``filter`` field is a callable (cannot be saved).
            TypeError: A document's metadata is not JSON-serialisable (nothing is written).
            FileExistsError: ``path`` is a file or a foreign directory.

        Example:
            >>> import tempfile
            >>> r = BM25Retriever.from_texts(["hello world"], metadatas=[{"lang": "en"}], k=2)
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     _ = r.save(tmp)
            ...     loaded = BM25Retriever.load(tmp)
            >>> loaded.k, loaded.invoke("hello")[0].metadata
            (2, {'lang': 'en'})

        """
        if self.filter is not None and not isinstance(self.filter, dict):
            raise ValueError("filter is a callable and cannot be saved; use a dict filter or None")
        try:
            json.dumps(self.filter, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise ValueError(f"the filter cannot be saved as JSON: {exc}") from None
        settings = {
            "face": _FACE,
            "k": self.k,
            "k_set": "k" in self.model_fields_set,
            "filter": self.filter,
            "epsilon": self._state.epsilon,
        }
        try:
            return self._state.collection.save(
                path, overwrite=overwrite, extra=lambda: {"retriever": settings}
            )
        except ValueError as exc:
            message = str(exc)
            if "cannot be saved as JSON" not in message:
                raise
            raise TypeError(
                message.replace("cannot be saved as JSON", "is not JSON-serialisable")
            ) from None

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = True, verify: Verify = "full") -> BM25Retriever:
        """Load a retriever written by :meth:`save`, checked against its manifest first.

        A save from an earlier release (``documents.json`` and ``index/``, no checksums) is
        still read, with a warning.

        Args:
            path: The directory.
            mmap: Memory-map the arrays and texts (see ``HybridIndex.load``).
            verify: ``"full"`` checksums every file, ``"size"`` checks sizes only.

        Raises:
            FileNotFoundError: Nothing saved there.
            CorruptIndexError: A truncated, modified or missing file (named in the message).
            ValueError: Not a saved retriever.

        Example:
            >>> import tempfile
            >>> r = BM25Retriever.from_texts(["alpha", "beta"], ids=["a", "b"])
            >>> r.delete(["a"])
            True
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     _ = r.save(tmp)
            ...     [d.id for d in BM25Retriever.load(tmp).invoke("beta")]
            ['b']

        """
        directory = Path(path)
        if (directory / _LEGACY_DOCS_FILE).is_file() and not (directory / MANIFEST_FILE).exists():
            return cls._load_legacy(directory, mmap=mmap)
        build = functools.partial(cls._from_snapshot, mmap=mmap)
        return load_consistent(path, build, verify=verify)

    @classmethod
    def _from_snapshot(cls, snapshot: IndexSnapshot, *, mmap: bool) -> BM25Retriever:
        params = snapshot.manifest["parameters"]
        settings = params.get("retriever")
        if not isinstance(settings, Mapping) or settings.get("face") != _FACE:
            raise ValueError(
                f"{snapshot.display()} holds a HybridIndex, not a BM25Retriever: open it with "
                "HybridIndex.load(path, embedding)"
            )
        collection = Collection.from_snapshot(snapshot, mmap=mmap, dense_params=None)
        try:
            state = _State(collection, _check_epsilon(settings.get("epsilon", _DEFAULT_EPSILON)))
            state.rebuild()
            k = {"k": settings["k"]} if settings.get("k_set", True) else {}
            return cls._prepared(state, filter=settings["filter"], **k)
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptIndexError(
                f"{snapshot.display(snapshot.manifest_file)} is damaged: the retriever settings "
                f"are invalid ({exc!r:.200})"
            ) from exc

    @classmethod
    def _load_legacy(cls, directory: Path, *, mmap: bool) -> BM25Retriever:
        """Read the unchecked format of earlier releases (``documents.json`` + ``index/``)."""
        warnings.warn(
            f"{str(directory)!r} was saved by an earlier release without checksums; save it "
            "again to get the atomic, checksummed format",
            UserWarning,
            stacklevel=3,
        )
        docs_file = directory / _LEGACY_DOCS_FILE
        try:
            payload = json.loads(docs_file.read_text(encoding="utf-8"))
            if payload.get("format") != _LEGACY_FORMAT or payload.get("version") != 1:
                raise ValueError(f"not a {_LEGACY_FORMAT} version 1 file")
            index = BM25Index.load(directory / _LEGACY_INDEX_DIR, mmap=mmap)
            records = payload["documents"]
            slots = np.asarray(payload["slots"], dtype=np.int64)
            if len(slots) != len(records) or index.n_live != len(records):
                raise ValueError("the documents and the index disagree")
            if len(slots) and not index.live_mask[slots].all():
                raise ValueError("a slot is not live")
            records = [records[i] for i in np.argsort(slots).tolist()]
            if index.n_slots != index.n_live:
                index.compact()
            collection = Collection()
            collection.adopt(
                index,
                [r["id"] for r in records],
                [r["page_content"] for r in records],
                [r["metadata"] for r in records],
            )
            state = _State(collection)
            state.rebuild()
            return cls._prepared(state, k=payload["k"], filter=payload["filter"])
        except (KeyError, TypeError, ValueError, OSError, RecursionError, EOFError) as exc:
            raise CorruptIndexError(
                f"{str(docs_file)!r} (an earlier BM25Retriever save) cannot be read: {exc}"
            ) from exc

    @classmethod
    def _prepared(cls, state: _State, **fields: Any) -> BM25Retriever:
        token = _PREPARED.set(state)
        try:
            return cls(docs=state.docs, index=state.collection.bm25, **fields)
        finally:
            _PREPARED.reset(token)


def _method(method: str, variant: str | None) -> str:
    if variant is None:
        return method
    if variant not in _VARIANTS:
        raise ValueError(f"bm25_variant must be one of {sorted(_VARIANTS)}, got {variant!r}")
    return _VARIANTS[variant]


def _check_epsilon(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ValueError(f"bm25_params epsilon must be a finite number, got {value!r}")
    return float(value)


def _assign_ids(
    docs: Sequence[Document], ids: Sequence[str | None] | None, *, taken: Container[str]
) -> tuple[list[str], list[bool]]:
    """Explicit ids (must be unique), else content hashes made unique with a suffix.

    Returns:
        The keys and, per document, whether its key was derived from its content.

    """
    out: list[str] = []
    seen: set[str] = set()
    for i, doc in enumerate(docs):
        explicit = ids[i] if ids is not None else doc.id
        if explicit is not None:
            explicit = str(explicit)
            if explicit in seen:
                raise ValueError(f"ids must be unique, got {explicit!r} twice")
            seen.add(explicit)
            out.append(explicit)
        else:
            out.append("")
    derived = [not key for key in out]
    for i, doc in enumerate(docs):
        if out[i]:
            continue
        base = content_id(doc)
        candidate, n = base, 1
        while candidate in seen or candidate in taken:
            n += 1
            candidate = f"{base}-{n}"
        seen.add(candidate)
        out[i] = candidate
    return out, derived
