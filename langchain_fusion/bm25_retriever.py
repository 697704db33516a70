"""A fast, drop-in replacement for ``langchain_community``'s ``BM25Retriever``.

Same constructors (``from_texts`` / ``from_documents``) and the same ``k`` field, but:

* better ranking: a real tokenizer (lowercase, stopwords, Snowball stemming) instead of
  ``str.split`` -- BEIR SciFact nDCG@10 0.69 instead of 0.52;
* fast: a sparse numpy index answers a query over 100k documents in about a millisecond, where
  rank-bm25 scores every document in Python;
* scores (:meth:`BM25Retriever.search_with_scores`), complete scoring of arbitrary documents for
  score fusion (:meth:`BM25Retriever.score_documents`), metadata filters, incremental
  :meth:`~BM25Retriever.add_documents` / :meth:`~BM25Retriever.delete` with exact statistics,
  and pickle-free :meth:`~BM25Retriever.save` / :meth:`~BM25Retriever.load`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
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

from langchain_fusion.docstore import copy_metadata
from langchain_fusion.filters import Filter, filter_mask
from langchain_fusion.lexical import BM25Index, Tokenizer

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["BM25Retriever"]

_FORMAT = "langchain-fusion/bm25-retriever"
_VERSION = 1
_DOCS_FILE = "documents.json"
_INDEX_DIR = "index"
_MASK_CACHE_SIZE = 16
_BM25_PARAM_KEYS = ("k1", "b", "method", "delta")
# Set by this module's constructors around model construction: the documents are already copies
# with ids, aligned with these index slots. (Pydantic drops validation context for models with a
# custom __init__, as LangChain's are, hence a context variable.)
_PREPARED: ContextVar[NDArray[np.int64] | None] = ContextVar("bm25_prepared_slots", default=None)


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


def _pickle_error() -> TypeError:
    return TypeError(
        "BM25Retriever cannot be pickled (loading a pickle can run arbitrary code): persist it "
        "with retriever.save(path) and BM25Retriever.load(path), or rebuild it with "
        "BM25Retriever.from_documents(retriever.docs, ...); copy.deepcopy(retriever) makes an "
        "independent in-memory copy"
    )


class _State:
    """What :meth:`BM25Retriever.add_documents` / :meth:`~BM25Retriever.delete` change.

    One object, shared by a retriever and its shallow copies (``model_copy()``, which LangChain
    and this package use to change ``k`` per call): they all see the same documents, index slots
    and caches, and ``lock`` serialises every read and write of them, through any copy.
    ``copy.deepcopy`` gives an independent state (new lock, copied documents).
    """

    __slots__ = (
        "content_to_pos",
        "derived",
        "docs",
        "id_to_pos",
        "lock",
        "masks",
        "positions",
        "slots",
    )

    def __init__(self, docs: list[Document], slots: NDArray[np.int64], n_slots: int) -> None:
        self.lock = threading.RLock()
        self.docs = docs  # the very list of the ``docs`` field, only ever changed in place
        self.slots = slots  # index slot of docs[i]
        self.positions = np.zeros(0, dtype=np.int64)  # slot -> position in docs, -1 if none
        self.id_to_pos: dict[str, int] = {}
        self.content_to_pos: dict[str, int] | None = None
        self.masks: OrderedDict[str, NDArray[np.bool_]] = OrderedDict()
        self.derived: dict[str, bool] = {}  # id -> made from the content? (memo, see below)
        self.reindex(n_slots)

    def reindex(self, n_slots: int) -> None:
        """Recompute ``positions`` and ``id_to_pos`` from ``docs`` and ``slots``."""
        positions = np.full(n_slots, -1, dtype=np.int64)
        positions[self.slots] = np.arange(len(self.slots), dtype=np.int64)
        self.positions = positions
        self.id_to_pos = {d.id: i for i, d in enumerate(self.docs) if d.id is not None}

    def changed(self) -> None:
        self.content_to_pos = None
        self.masks.clear()
        self.derived.clear()

    def __deepcopy__(self, memo: dict[int, Any]) -> _State:
        with self.lock:
            new = _State.__new__(_State)
            new.lock = threading.RLock()
            new.docs = copy.deepcopy(self.docs, memo)  # via memo: the copy's ``docs`` field
            new.slots = self.slots.copy()
            new.positions = self.positions.copy()
            new.id_to_pos = dict(self.id_to_pos)
            new.content_to_pos = None
            new.masks = OrderedDict()
            new.derived = {}
            return new

    def __getstate__(self) -> None:
        raise _pickle_error()


class BM25Retriever(BaseRetriever):
    """BM25 keyword retriever over an in-memory :class:`~langchain_fusion.lexical.BM25Index`.

    Build it with :meth:`from_texts` / :meth:`from_documents` (or ``BM25Retriever(docs=[...])``
    with default BM25 settings). Stored documents are copies; every document has an id (its own
    ``Document.id``, else a stable hash of content and metadata); returned documents are fresh
    copies, their metadata untouched. The copies are independent down to nested values: changing
    ``doc.metadata["tags"]`` of a returned document, or of a document after passing it in, never
    changes what the retriever stores or filters on.

    Copies: ``model_copy()`` (used by LangChain and this package to change ``k`` or ``filter``
    per call) is cheap and shares the documents and the index with the original -- a view with
    its own settings: documents added or deleted through either are seen by both.
    ``copy.deepcopy`` makes an independent retriever. Pickling raises a ``TypeError``: use
    :meth:`save` / :meth:`load`. Thread-safe: searches and updates, through the retriever or any
    of its ``model_copy()`` copies, are serialised by one lock.

    Unknown constructor arguments (``k=`` misspelt ``kk=``...) raise an error naming the
    accepted ones.

    A query without any indexed term returns no documents (``langchain_community``'s version
    returns ``k`` arbitrary ones).

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
    """The live documents (copies, each with an id), in insertion order. Read-only: change them
    with :meth:`add_documents` / :meth:`delete`, which keep the index in sync."""
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
        if prepared is not None:  # from our own constructors: docs are copies with ids
            self._state = _State(self.docs, prepared, self.bm25_index.n_slots)
            return self
        docs = list(self.docs)
        ids = self._assign_ids(docs, None, taken=set())
        self.docs = [_copy_document(d, i) for d, i in zip(docs, ids, strict=True)]
        if self.index is None:
            self.index = BM25Index()
            self.index.add([d.page_content for d in self.docs])
        elif self.index.n_slots != len(self.docs) or self.index.n_live != len(self.docs):
            raise ValueError(
                f"index must hold exactly the documents, slot i = docs[i], without removed "
                f"slots: got {len(self.docs)} documents and an index with n_live="
                f"{self.index.n_live}, n_slots={self.index.n_slots}"
            )
        slots = np.arange(len(self.docs), dtype=np.int64)
        self._state = _State(self.docs, slots, self.index.n_slots)
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
        with self._state.lock:  # a consistent snapshot of documents and index
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
        k: int = 4,
        tokenizer: Tokenizer | None = None,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
        show_progress: bool = False,
        **kwargs: Any,
    ) -> BM25Retriever:
        """Build a retriever from texts.

        Args:
            texts: The texts.
            metadatas: One metadata dict per text.
            ids: One id per text; default: a stable hash of content and metadata.
            bm25_params: For compatibility with ``langchain_community`` (also its position, the
                fourth): ``k1``, ``b``, ``method``, ``delta``; they override the arguments below.
            k: Number of documents to return.
            tokenizer: The tokenizer (default: lowercase, English stopwords, Snowball stemming).
            k1: BM25 term-frequency saturation.
            b: BM25 length normalization.
            method: BM25 variant (``"lucene"``, ``"robertson"``, ``"atire"``, ``"bm25l"``,
                ``"bm25+"``).
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
            params={"k1": k1, "b": b, "method": method},
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
            params = ["k", "tokenizer", "k1", "b", "method", "show_progress", "bm25_params"]
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
        k: int,
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
        if bm25_params:
            unknown = sorted(set(bm25_params) - set(_BM25_PARAM_KEYS))
            if unknown:
                raise ValueError(
                    f"bm25_params has unsupported keys {unknown}; allowed: {list(_BM25_PARAM_KEYS)}"
                )
            params = {**params, **bm25_params}
        index = BM25Index(tokenizer, **params)
        docs = [Document(page_content=t, metadata=m) for t, m in zip(texts, metas, strict=True)]
        final_ids = cls._assign_ids(docs, ids, taken=set())
        for doc, doc_id in zip(docs, final_ids, strict=True):
            doc.id = doc_id
        slots = index.add(texts, show_progress=show_progress)
        return cls._prepared(slots, docs=docs, index=index, k=k, **fields)

    @classmethod
    def from_documents(
        cls,
        documents: Iterable[Document],
        *,
        k: int = 4,
        tokenizer: Tokenizer | None = None,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
        show_progress: bool = False,
        bm25_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> BM25Retriever:
        """Build a retriever from documents (their ids are kept; see :meth:`from_texts`).

        Example:
            >>> docs = [Document("mitochondria make energy", id="m"), Document("ribosomes")]
            >>> r = BM25Retriever.from_documents(docs)
            >>> r.invoke("energy")[0].id, len(r.docs[1].id)
            ('m', 36)

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
            params={"k1": k1, "b": b, "method": method},
            show_progress=show_progress,
            bm25_params=bm25_params,
            fields=kwargs,
        )

    @staticmethod
    def _assign_ids(
        docs: Sequence[Document], ids: Sequence[str | None] | None, *, taken: set[str]
    ) -> list[str]:
        """Explicit ids (must be unique), else content hashes made unique with a suffix."""
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
        used = taken | seen
        for i, doc in enumerate(docs):
            if out[i]:
                continue
            base = content_id(doc)
            candidate, n = base, 1
            while candidate in used:
                n += 1
                candidate = f"{base}-{n}"
            used.add(candidate)
            out[i] = candidate
        return out

    # ------------------------------------------------------------------ properties

    @property
    def documents(self) -> list[Document]:
        """The live documents (same as ``docs``)."""
        return self._state.docs

    @property
    def bm25_index(self) -> BM25Index:
        """The BM25 index (never ``None`` after construction)."""
        assert self.index is not None
        return self.index

    def __len__(self) -> int:
        return len(self._state.docs)

    # ------------------------------------------------------------------ searching

    def _mask(self, filter: Filter | None) -> NDArray[np.bool_] | None:
        """Boolean mask over index slots for a filter, cached for dict filters (lock held)."""
        if filter is None:
            return None
        state = self._state
        key: str | None = None
        if isinstance(filter, dict):
            try:
                key = json.dumps(filter, sort_keys=True)
            except (TypeError, ValueError):
                key = None
        if key is not None and key in state.masks:
            state.masks.move_to_end(key)
            return state.masks[key]
        matches = filter_mask([d.metadata for d in state.docs], filter)
        mask = np.zeros(self.bm25_index.n_slots, dtype=np.bool_)
        mask[state.slots[matches]] = True
        if key is not None:
            state.masks[key] = mask
            if len(state.masks) > _MASK_CACHE_SIZE:
                state.masks.popitem(last=False)
        return mask

    def _derived_ids(self, docs: Sequence[Document]) -> list[bool]:
        """Per document, whether this retriever made its id from its content (no id was given).

        Fusion matches such documents by text, as the community retriever's id-less ones. The
        answers are memoized per id until the documents change, so a query pays the content
        hash once per document, not once per search.
        """
        state = self._state
        with state.lock:
            known = [state.derived.get(d.id) if d.id is not None else False for d in docs]
        missing = [i for i, k in enumerate(known) if k is None]
        for i in missing:
            doc = docs[i]
            base = content_id(doc)
            known[i] = doc.id == base or str(doc.id).startswith(base + "-")
        if missing:
            with state.lock:
                state.derived.update((str(docs[i].id), bool(known[i])) for i in missing)
        return [bool(k) for k in known]

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
        with state.lock:
            mask = self._mask(self.filter if filter is None else filter)
            slots, scores = self.bm25_index.search(query, k, mask=mask)
            hits = [state.docs[p] for p in state.positions[slots].tolist()]
        # Stored documents are never modified in place (an upsert stores a new one), so copying
        # them needs no lock.
        return [
            (_copy_document(doc, doc.id or ""), float(s))
            for doc, s in zip(hits, scores.tolist(), strict=True)
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
        with state.lock:
            found: list[int] = []
            slots: list[int] = []
            for i, doc in enumerate(documents):
                pos = state.id_to_pos.get(doc.id) if doc.id is not None else None
                if pos is None:
                    pos = self._content_index().get(doc.page_content)
                if pos is not None:
                    found.append(i)
                    slots.append(int(state.slots[pos]))
            if found:
                out[found] = self.bm25_index.score(query, np.array(slots, dtype=np.int64))
        return out

    def _content_index(self) -> dict[str, int]:
        state = self._state
        if state.content_to_pos is None:
            table: dict[str, int] = {}
            for pos, doc in enumerate(state.docs):
                table.setdefault(doc.page_content, pos)
            state.content_to_pos = table
        return state.content_to_pos

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
            ids: Their ids (default: ``Document.id``, else a stable content hash).
            show_progress: Show a progress bar while indexing.

        Returns:
            The ids of the added documents.

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
        if ids is not None and len(ids) != len(docs):
            raise ValueError(f"ids must have one id per document: got {len(ids)} for {len(docs)}")
        explicit = list(ids) if ids is not None else [d.id for d in docs]
        copies = [_copy_document(d, None) for d in docs]  # outside the lock
        state = self._state
        with state.lock:
            replaced = [str(i) for i in explicit if i is not None and str(i) in state.id_to_pos]
            old_positions = [state.id_to_pos[i] for i in replaced]
            taken = set(state.id_to_pos).difference(replaced)
            new_ids = self._assign_ids(copies, explicit, taken=taken)
            for doc, doc_id in zip(copies, new_ids, strict=True):
                doc.id = doc_id
            # Index first: if tokenizing fails, nothing has changed.
            slots = self.bm25_index.add(
                [d.page_content for d in copies], show_progress=show_progress
            )
            base = len(state.docs)
            state.docs.extend(copies)
            state.slots = np.concatenate([state.slots, slots])
            if old_positions:
                self._remove_positions(old_positions)
            else:
                positions = np.full(self.bm25_index.n_slots, -1, dtype=np.int64)
                positions[: len(state.positions)] = state.positions
                positions[slots] = np.arange(base, base + len(copies), dtype=np.int64)
                state.positions = positions
                state.id_to_pos.update((doc_id, base + j) for j, doc_id in enumerate(new_ids))
            state.changed()
            return new_ids

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
        state = self._state
        with state.lock:
            positions = [state.id_to_pos[i] for i in wanted if i in state.id_to_pos]
            if not positions:
                return False
            self._remove_positions(positions)
            state.changed()
            return True

    def _remove_positions(self, positions_list: list[int]) -> None:
        state = self._state
        positions = np.unique(np.array(positions_list, dtype=np.int64))
        index = self.bm25_index
        index.remove(state.slots[positions])
        keep = np.ones(len(state.docs), dtype=np.bool_)
        keep[positions] = False
        # In place: ``state.docs`` is the ``docs`` field of this retriever and of its copies.
        state.docs[:] = [d for d, kept in zip(state.docs, keep.tolist(), strict=True) if kept]
        state.slots = state.slots[keep]
        if index.n_slots > 1024 and index.n_live < index.n_slots // 2:
            mapping = index.compact()
            state.slots = mapping[state.slots]
        state.reindex(index.n_slots)

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> None:
        """Save into a directory: the index (``index/``) and ``documents.json``. No pickle.

        Raises:
            ValueError: The ``filter`` field is a callable (cannot be saved).
            TypeError: A document's metadata is not JSON-serialisable.

        Example:
            >>> import tempfile
            >>> r = BM25Retriever.from_texts(["hello world"], metadatas=[{"lang": "en"}], k=2)
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     r.save(tmp)
            ...     loaded = BM25Retriever.load(tmp)
            >>> loaded.k, loaded.invoke("hello")[0].metadata
            (2, {'lang': 'en'})

        """
        if self.filter is not None and not isinstance(self.filter, dict):
            raise ValueError("filter is a callable and cannot be saved; use a dict filter or None")
        directory = Path(path)
        state = self._state
        with state.lock:
            records = []
            for doc in state.docs:
                try:
                    json.dumps(doc.metadata)
                except (TypeError, ValueError) as exc:
                    raise TypeError(
                        f"metadata of document {doc.id!r} is not JSON-serialisable: {exc}"
                    ) from None
                records.append(
                    {"id": doc.id, "page_content": doc.page_content, "metadata": doc.metadata}
                )
            payload = {
                "format": _FORMAT,
                "version": _VERSION,
                "k": self.k,
                "filter": self.filter,
                "slots": state.slots.tolist(),
                "documents": records,
            }
            directory.mkdir(parents=True, exist_ok=True)
            self.bm25_index.save(directory / _INDEX_DIR)
            tmp = directory / f".{_DOCS_FILE}.tmp"
            tmp.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
            tmp.replace(directory / _DOCS_FILE)

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = True) -> BM25Retriever:
        """Load a retriever written by :meth:`save`.

        Args:
            path: The directory.
            mmap: Memory-map the index postings (see :meth:`BM25Index.load`).

        Raises:
            FileNotFoundError: Nothing saved there.
            ValueError: Incompatible or inconsistent files.

        Example:
            >>> import tempfile
            >>> r = BM25Retriever.from_texts(["alpha", "beta"], ids=["a", "b"])
            >>> r.delete(["a"])
            True
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     r.save(tmp)
            ...     [d.id for d in BM25Retriever.load(tmp).invoke("beta")]
            ['b']

        """
        directory = Path(path)
        docs_path = directory / _DOCS_FILE
        if not docs_path.is_file():
            raise FileNotFoundError(
                f"no BM25Retriever in {str(directory)!r} (missing {_DOCS_FILE})"
            )
        payload = json.loads(docs_path.read_text(encoding="utf-8"))
        if payload.get("format") != _FORMAT or payload.get("version") != _VERSION:
            raise ValueError(f"{str(docs_path)!r} is not a {_FORMAT} version {_VERSION} file")
        index = BM25Index.load(directory / _INDEX_DIR, mmap=mmap)
        docs = [
            Document(page_content=r["page_content"], metadata=r["metadata"], id=r["id"])
            for r in payload["documents"]
        ]
        slots = np.asarray(payload["slots"], dtype=np.int64)
        if len(slots) != len(docs) or index.n_live != len(docs):
            raise ValueError(
                f"inconsistent save in {str(directory)!r}: {len(docs)} documents, "
                f"{len(slots)} slots, index with {index.n_live} live documents"
            )
        if len(slots) and not index.live_mask[slots].all():
            raise ValueError(f"inconsistent save in {str(directory)!r}: a slot is not live")
        return cls._prepared(
            slots, docs=docs, index=index, k=payload["k"], filter=payload["filter"]
        )

    @classmethod
    def _prepared(cls, slots: NDArray[np.int64], **fields: Any) -> BM25Retriever:
        token = _PREPARED.set(slots)
        try:
            return cls(**fields)
        finally:
            _PREPARED.reset(token)
