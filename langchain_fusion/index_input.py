"""Input checks of ``HybridIndex`` adds: texts, metadata, ids, documents, embedding batches.

Everything here runs before the index is touched (and, for embedding, outside its lock), so a bad
argument changes nothing. Messages name the argument and the position: ``texts[3] must be a
str``, ``metadatas[1]['a'] has a key of type int``.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from numpy.typing import NDArray

from langchain_fusion.docstore import check_metadata

__all__ = [
    "check_bool",
    "embed_in_batches",
    "prepare_add",
    "reject_kwargs",
    "store_batch",
    "unpack_documents",
]


def check_bool(value: Any, name: str) -> bool:
    """Return ``value`` if it is a bool, else raise ``TypeError`` naming ``name``.

    Example:
        >>> check_bool(True, "upsert")
        True

    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def reject_kwargs(method: str, kwargs: Mapping[str, Any], allowed: str = "filter") -> None:
    """Raise ``TypeError`` naming unexpected keyword arguments of ``HybridIndex.<method>``.

    Example:
        >>> reject_kwargs("delete", {})

    """
    if kwargs:
        raise TypeError(
            f"HybridIndex.{method}() got unexpected keyword arguments {sorted(kwargs)!r}; "
            f"it accepts {allowed}"
        )


def unpack_documents(
    documents: Iterable[Document], kwargs: dict[str, Any]
) -> tuple[list[str], list[dict[str, Any]], Sequence[str | None]]:
    """Split documents into texts, metadatas and ids (``kwargs["ids"]`` wins, popped).

    Example:
        >>> unpack_documents([Document("a", id="1")], {})
        (['a'], [{}], ['1'])

    """
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


def prepare_add(
    texts: Iterable[str],
    metadatas: Sequence[Mapping[str, Any] | None] | None,
    ids: Sequence[str | None] | None,
    *,
    upsert: bool,
) -> tuple[list[str], list[str], list[Mapping[str, Any] | None]]:
    """Validate an add's arguments; return ``(ids, texts, metadatas)`` as lists.

    Missing or empty ids get a new UUID4; metadata is checked with
    [`check_metadata`][langchain_fusion.docstore.check_metadata].

    Example:
        >>> prepare_add(["a"], None, ["x"], upsert=True)
        (['x'], ['a'], [None])

    """
    if isinstance(texts, str) or not isinstance(texts, Iterable):
        raise TypeError(
            f"texts must be an iterable of str, got {type(texts).__name__}"
            + (" (wrap a single text in a list)" if isinstance(texts, str) else "")
        )
    upsert = check_bool(upsert, "upsert")
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
                raise TypeError(f"metadatas[{i}] must be a dict or None, got {type(meta).__name__}")
            if meta:
                check_metadata(meta, f"metadatas[{i}]")
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
    return id_list, text_list, meta_list


def embed_in_batches(
    embed: Callable[[list[str]], Any],
    texts: list[str],
    size: int,
    check: Callable[[Any, int, int, int | None], NDArray[np.float32]],
    *,
    show_progress: bool = False,
) -> NDArray[np.float32]:
    """Embed ``texts`` ``size`` at a time into one ``(n, dim)`` float32 array.

    Args:
        embed: ``embed_documents``.
        texts: The texts (not empty).
        size: Texts per call.
        check: ``check(raw, n, offset, expected_dim)`` validates one batch (float32 rows).
        show_progress: A progress bar over the batches.

    Example:
        >>> embed_in_batches(lambda ts: [[1.0, float(len(t))] for t in ts], ["a", "bb"], 1,
        ...                  lambda raw, n, off, exp: np.asarray(raw, np.float32)).tolist()
        [[1.0, 1.0], [1.0, 2.0]]

    """
    starts: Iterable[int] = range(0, len(texts), size)
    if show_progress and len(texts) > size:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="Embedding", unit="batch")
    out: NDArray[np.float32] | None = None
    for start in starts:
        chunk = texts[start : start + size]
        out = store_batch(out, check, embed(chunk), start, len(chunk), len(texts))
    assert out is not None  # texts is never empty here
    return out


def store_batch(
    out: NDArray[np.float32] | None,
    check: Callable[[Any, int, int, int | None], NDArray[np.float32]],
    raw: Any,
    start: int,
    n: int,
    total: int,
) -> NDArray[np.float32]:
    """Validate one embedded batch and copy it into ``out`` (allocated at the first batch).

    Args:
        out: The ``(total, dim)`` float32 result so far, or ``None`` before the first batch.
        check: Validates the batch (see `embed_in_batches`).
        raw: What ``embed_documents`` returned for ``texts[start : start + n]``.
        start: Offset of the batch in the texts.
        n: Number of texts in the batch.
        total: Number of texts in the whole call.

    Example:
        >>> store_batch(None, lambda r, n, o, e: np.asarray(r, np.float32), [[1, 2]], 0, 1, 2).shape
        (2, 2)

    """
    batch = check(raw, n, start, None if out is None else out.shape[1])
    if out is None:
        out = np.empty((total, batch.shape[1]), dtype=np.float32)
    out[start : start + n] = batch
    return out
