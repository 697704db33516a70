"""Checks on embedding models and the vectors they return (used by the stores' faces).

* identity: [`embedding_identity`][] records which model made the stored vectors (class, model
  name, dimension) without loading it; [`matching_embedding`][] checks a model passed to
  ``load`` against it;
* vectors: [`check_vectors`][] refuses a batch of the wrong count or dimension, non-numeric,
  NaN/infinite or all-zero rows (no cosine), with a message naming the text;
  [`check_query_vector`][] does the same for one query vector.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from numpy.typing import ArrayLike, NDArray

from langchain_fusion.dense.embeddings import LocalEmbeddings, default_embeddings

__all__ = [
    "BUNDLED_MODEL",
    "CHECK_ROWS",
    "check_query_vector",
    "check_vectors",
    "declared_dim",
    "describe",
    "embedding_identity",
    "matching_embedding",
    "model_name",
    "same_model",
    "same_precision",
]

BUNDLED_MODEL = "all-MiniLM-L6-v2"
"""Name of the default local model (``LocalEmbeddings()``)."""
CHECK_ROWS = 16_384
"""Pre-computed vectors are checked this many rows at a time (bounds the temporaries)."""


def model_name(embedding: Embeddings) -> str | None:
    """Return the model name of an embedding object if it declares one (no model load).

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> model_name(DeterministicFakeEmbedding(size=4)) is None
        True

    """
    if isinstance(embedding, LocalEmbeddings):
        return BUNDLED_MODEL if embedding.model_path is None else Path(embedding.model_path).name
    for attr in ("model_name", "model", "model_id", "deployment"):
        value = getattr(embedding, attr, None)
        if isinstance(value, str) and value:
            return value
    return None


def declared_dim(embedding: Embeddings) -> int | None:
    """Return the vector dimension an embedding object declares, without loading a model.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> declared_dim(DeterministicFakeEmbedding(size=4))
        4

    """
    if isinstance(embedding, LocalEmbeddings):
        return embedding.dimension if embedding.model_path is None else None
    for attr in ("dimensions", "dimension", "size", "dim"):
        value = getattr(embedding, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def embedding_identity(embedding: Embeddings, dim: int | None = None) -> dict[str, Any]:
    """Return ``{"class", "model", "dim"}`` of an embedding object, without loading a model.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> embedding_identity(DeterministicFakeEmbedding(size=4))["dim"]
        4

    """
    cls = type(embedding)
    identity: dict[str, Any] = {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "model": model_name(embedding),
        "dim": dim if dim is not None else declared_dim(embedding),
    }
    if isinstance(embedding, LocalEmbeddings):
        identity["precision"] = embedding.precision  # "int8" or "fp32"
    return identity


def same_precision(saved: Mapping[str, Any], embedding: Embeddings) -> Embeddings:
    """Return ``embedding`` set to the precision a saved identity records, if left to default.

    A :class:`LocalEmbeddings` whose ``quantize`` is ``None`` queries an index with the
    precision the index was built with (an identity without one was built in float32); any
    other embedding is returned as is.

    Example:
        >>> saved = {"class": "langchain_fusion.dense.embeddings.LocalEmbeddings",
        ...          "precision": "fp32"}
        >>> same_precision(saved, LocalEmbeddings()).precision
        'fp32'

    """
    if isinstance(embedding, LocalEmbeddings) and str(saved.get("class", "")).endswith(
        ".LocalEmbeddings"
    ):
        return embedding.with_precision(saved.get("precision", "fp32"))
    return embedding


def describe(identity: Mapping[str, Any]) -> str:
    """Return a short human name of an embedding identity, for messages.

    Example:
        >>> describe({"class": "pkg.LocalEmbeddings", "model": "m"})
        "LocalEmbeddings (model 'm')"

    """
    name = str(identity.get("class", "?")).rsplit(".", 1)[-1]
    model = identity.get("model")
    return f"{name} (model {model!r})" if model else name


def same_model(a: str, b: str) -> bool:
    """Compare model names up to an organisation prefix: ``org/name`` == ``name``.

    Example:
        >>> same_model("sentence-transformers/all-MiniLM-L6-v2", "all-minilm-l6-v2")
        True

    """
    return a.rsplit("/", 1)[-1].lower() == b.rsplit("/", 1)[-1].lower()


def check_vectors(
    raw: Any,
    n: int,
    offset: int,
    expected: int | None,
    held: int | None,
    model: str,
    *,
    rows: int = CHECK_ROWS,
) -> NDArray[np.float32]:
    """Check one batch returned by an embedding; return it as float32 ``(n, dim)``.

    Args:
        raw: What ``embed_documents`` returned (list of lists or a 2-D array).
        n: Number of texts embedded.
        offset: Position of the first text in the whole call (for messages).
        expected: Dimension required (``None``: the store's, or the first row's).
        held: Dimension of the vectors the store already holds (``None`` while empty).
        model: The model, described for messages.
        rows: A 2-D float array is checked this many rows at a time (bounds temporaries).

    Raises:
        ValueError: Wrong count or dimension, non-numeric, NaN/infinite or all-zero rows.

    Example:
        >>> check_vectors([[1.0, 0.0]], 1, 0, None, None, "m").dtype
        dtype('float32')
        >>> check_vectors([[0.0, 0.0]], 1, 0, None, None, "m")
        Traceback (most recent call last):
        ...
        ValueError: embedding m returned an all-zero vector for texts[0], which has no cosine similarity; nothing was added

    """  # noqa: E501
    if isinstance(raw, np.ndarray) and raw.dtype in (np.float32, np.float64) and raw.ndim == 2:
        return _check_array(raw, n, offset, expected, held, model, rows)
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
        expected = held
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
            holder = "the index holds" if held is not None else "the first text got"
            raise ValueError(
                f"embedding {model} returned a vector of dimension {length} for "
                f"texts[{offset + row}], but {holder} vectors of dimension {reference} "
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


def _check_array(
    raw: NDArray[Any],
    n: int,
    offset: int,
    expected: int | None,
    held: int | None,
    model: str,
    rows: int,
) -> NDArray[np.float32]:
    """`check_vectors` for a 2-D float array, row block by row block.

    Same checks and messages, but no full-size temporary: a float32 array is returned as
    it is (C-contiguous), a float64 one converted once.
    """
    if raw.shape[0] != n:
        raise ValueError(
            f"embedding {model} returned {raw.shape[0]} vectors for {n} texts; expected one "
            "vector per text"
        )
    if expected is None:
        expected = held
    if raw.shape[1] == 0 or (expected is not None and raw.shape[1] != expected):
        if expected is None:
            raise ValueError(
                f"embedding {model} returned an array of shape {raw.shape} for {n} texts; "
                "expected (n_texts, dim)"
            )
        holder = "the index holds" if held is not None else "the first text got"
        raise ValueError(
            f"embedding {model} returned a vector of dimension {raw.shape[1]} for "
            f"texts[{offset}], but {holder} vectors of dimension {expected} "
            f"(expected {expected}, received {raw.shape[1]})"
        )
    out = np.ascontiguousarray(raw, dtype=np.float32)
    for start in range(0, n, rows):
        block = out[start : start + rows]
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            row = start + int(np.flatnonzero(~finite)[0])
            raise ValueError(
                f"embedding {model} returned NaN or infinite values for "
                f"texts[{offset + row}]; nothing was added"
            )
    for start in range(0, n, rows):
        zero = ~out[start : start + rows].any(axis=1)
        if zero.any():
            row = start + int(np.flatnonzero(zero)[0])
            raise ValueError(
                f"embedding {model} returned an all-zero vector for texts[{offset + row}], "
                "which has no cosine similarity; nothing was added"
            )
    return out


def matching_embedding(
    saved: Mapping[str, Any], embedding: Embeddings | None, *, stacklevel: int = 3
) -> Embeddings:
    """Return the embedding for a loaded index, checked against the saved identity.

    A ``LocalEmbeddings`` left to its default precision comes back set to the precision the
    index was built with (:func:`same_precision`).

    Raises:
        ValueError: ``None`` for a non-default model, or a different dimension or model.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> saved = embedding_identity(DeterministicFakeEmbedding(size=4))
        >>> matching_embedding(saved, DeterministicFakeEmbedding(size=4)).size
        4

    """
    saved_dim, saved_model = saved.get("dim"), saved.get("model")
    if embedding is None:
        if str(saved.get("class", "")).endswith(".LocalEmbeddings") and (
            saved_model == BUNDLED_MODEL
        ):
            return same_precision(saved, default_embeddings())
        raise ValueError(
            f"this index was built with {describe(saved)}"
            + (f" ({saved_dim}-dimensional vectors)" if saved_dim else "")
            + "; pass the same model: HybridIndex.load(path, embedding=...), or "
            "--model DIR on the command line for a local model directory"
        )
    if not isinstance(embedding, Embeddings):
        raise TypeError(
            f"embedding must be a LangChain Embeddings object or None, got "
            f"{type(embedding).__name__}"
        )
    given = embedding_identity(embedding)
    if saved_dim and given["dim"] and saved_dim != given["dim"]:
        raise ValueError(
            f"embedding dimension mismatch: the index holds {saved_dim}-dimensional vectors "
            f"from {describe(saved)}, but the embedding passed ({describe(given)}) "
            f"produces {given['dim']}-dimensional vectors"
        )
    if saved_model and given["model"] and not same_model(saved_model, given["model"]):
        raise ValueError(
            f"embedding model mismatch: the index was built with {describe(saved)}, but "
            f"the embedding passed is {describe(given)}; vectors of different models are "
            "not comparable"
        )
    lineage = {f"{c.__module__}.{c.__qualname__}" for c in type(embedding).__mro__}
    if not (saved_model and given["model"]) and saved.get("class") not in lineage:
        warnings.warn(
            f"the index was built with {describe(saved)} and is loaded with "
            f"{describe(given)}; the model names cannot be compared, so make sure it is the "
            "same model: vectors of different models are not comparable",
            UserWarning,
            stacklevel=stacklevel,
        )
    return same_precision(saved, embedding)


def check_query_vector(
    vector: ArrayLike,
    dim: int | None,
    model: str | Callable[[], str],
    name: str = "query_vector",
) -> NDArray[np.float32]:
    """Return a query vector as float32, checked: 1-D, of dimension ``dim``, finite.

    ``model`` (or a callable returning it, called only for the message) describes the model.

    Example:
        >>> check_query_vector([1, 0], 2, "m").tolist()
        [1.0, 0.0]
        >>> check_query_vector([1, 0, 0], 2, "m")
        Traceback (most recent call last):
        ...
        ValueError: query_vector has dimension 3, but the index holds vectors of dimension 2 from m (expected 2, received 3)

    """  # noqa: E501
    try:
        arr = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a 1-D sequence of floats") from exc
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be a 1-D vector, got shape {arr.shape}")
    if dim is not None and arr.shape[0] != dim:
        raise ValueError(
            f"{name} has dimension {arr.shape[0]}, but the index holds vectors of dimension "
            f"{dim} from {model if isinstance(model, str) else model()} (expected {dim}, "
            f"received {arr.shape[0]})"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr
