"""ONNX Runtime engine for :class:`~langchain_fusion.LocalEmbeddings`: export once, then no torch.

A sentence-transformers model directory (the bundled all-MiniLM-L6-v2 or a
``fine_tune_embeddings`` output) is exported once to ONNX, with the mean pooling inside the graph,
plus an int8 copy (dynamic quantisation of the weights). The export goes into a cache directory,
one sub-directory per model *content* fingerprint::

    ~/.cache/langchain-fusion/onnx/<fingerprint>/
        manifest.json       what was exported, from which model, and each file's XXH3-128 checksum
        model.onnx          float32 graph: input_ids, attention_mask, token_type_ids -> mean pooled
        model.int8.onnx     the same graph with int8 weights

The cache root is ``$LANGCHAIN_FUSION_ONNX_CACHE``, else ``$XDG_CACHE_HOME/langchain-fusion/onnx``,
else ``~/.cache/langchain-fusion/onnx``. The entry is written into a temporary sibling directory
and renamed into place, so a crash or a full disk never leaves a half-written entry, and
concurrent exports of the same model are harmless (the first rename wins). Loading reads the
graph's bytes once, checks them against the manifest and hands the same bytes to ONNX Runtime,
so a truncated or altered file is never run.

Exporting needs ``torch``, ``transformers`` and ``onnx``; encoding afterwards needs only
``onnxruntime``, ``tokenizers`` and numpy. Texts are tokenized by the Rust ``tokenizers`` library
from the model's own ``tokenizer.json`` (truncated to the model's ``max_seq_length``); each text
runs alone, unpadded, one per core at a time, so a vector never depends on the texts embedded
with it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

__all__ = [
    "CACHE_ENV",
    "OnnxModelError",
    "default_cache_dir",
    "export_onnx",
    "model_fingerprint",
]

CACHE_ENV = "LANGCHAIN_FUSION_ONNX_CACHE"
"""Environment variable that overrides the ONNX cache root."""

EXPORT_HINT = 'pip install "langchain-fusion[local]"'
"""What exporting needs (torch, transformers and onnx; ``onnx`` is only used to export)."""

_FORMAT = 1
_MANIFEST = "manifest.json"
_FP32_FILE = "model.onnx"
_INT8_FILE = "model.int8.onnx"
_OPSET = 17
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Files whose content defines the exported vectors (the fingerprint covers them, in this order).
_FINGERPRINT_FILES = (
    "config.json",
    "model.safetensors",
    "pytorch_model.bin",
    "tokenizer.json",
    "sentence_bert_config.json",
    "modules.json",
    "1_Pooling/config.json",
)
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# model_fingerprint's results, keyed by directory and its files' (name, size, mtime)
_FINGERPRINTS: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}
_READ_BLOCK = 1 << 22
_BLOCK = 1024  # texts tokenized at a time by OnnxEncoder.encode
log = logging.getLogger(__name__)


class OnnxModelError(RuntimeError):
    """The ONNX engine cannot run: a missing dependency, a bad export or an unusable cache.

    The message is one line and says what to do.
    """


def default_cache_dir() -> Path:
    """Return the ONNX cache root (see the module docstring for the lookup order).

    Example:
        >>> import os
        >>> from pathlib import Path
        >>> env = os.environ.get("LANGCHAIN_FUSION_ONNX_CACHE")
        >>> default_cache_dir() == (Path(env) if env else default_cache_dir())
        True
        >>> default_cache_dir().parent.name if not env else "langchain-fusion"
        'langchain-fusion'

    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base) / "langchain-fusion" / "onnx"


def _xxh3(path: Path) -> str:
    import xxhash

    digest = xxhash.xxh3_128()
    with path.open("rb") as handle:
        while block := handle.read(_READ_BLOCK):
            digest.update(block)
    return str(digest.hexdigest())


def model_fingerprint(model_path: str | Path) -> str:
    """Return a content fingerprint of a sentence-transformers model directory (32 hex digits).

    It covers the weights, the configuration, the tokenizer and the pooling settings, so a
    fine-tuned model written over an old one gets a new fingerprint (and a new export).

    Raises:
        OnnxModelError: ``model_path`` is not a model directory with weights.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     model_fingerprint(tmp)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        langchain_fusion.dense.onnx.OnnxModelError: ... has no model.safetensors ...

    """
    import xxhash

    directory = Path(model_path)
    if not any((directory / name).is_file() for name in _WEIGHT_FILES):
        raise OnnxModelError(
            f"{str(directory)!r} has no model.safetensors or pytorch_model.bin: not a "
            "sentence-transformers model directory"
        )
    # Hashing the weights is the costly part: remember it per process for files unchanged
    # since (same size and modification time), so the export lookup and other callers (the
    # CLI's sample cache) hash a model once.
    files = [directory / name for name in _FINGERPRINT_FILES if (directory / name).is_file()]
    stats = [(f.name, f.stat()) for f in files]
    stamp = tuple((name, st.st_size, st.st_mtime_ns) for name, st in stats)
    key = (str(directory.resolve()), stamp)
    known = _FINGERPRINTS.get(key)
    if known is not None:
        return known
    digest = xxhash.xxh3_128()
    digest.update(f"langchain-fusion-onnx-{_FORMAT}-opset{_OPSET}".encode())
    for path in files:
        digest.update(f"\0{path.name}\0".encode())
        digest.update(_xxh3(path).encode())
    _FINGERPRINTS[key] = fingerprint = str(digest.hexdigest())
    return fingerprint


def _max_seq_length(model_path: Path) -> int:
    """Return ``max_seq_length`` (sentence-transformers truncates there; default 256)."""
    try:
        config = json.loads((model_path / "sentence_bert_config.json").read_text("utf-8"))
        value = int(config["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        value = 256
    return max(8, min(value, 512))


def _check_pooling(model_path: Path) -> None:
    """Refuse models whose pooling is not the mean pooling the exported graph computes."""
    path = model_path / "1_Pooling" / "config.json"
    if not path.is_file():
        return
    config = json.loads(path.read_text("utf-8"))
    mode = config.get("pooling_mode")
    if isinstance(mode, str):  # newer sentence-transformers: "pooling_mode": "mean"
        modes = [f"pooling_mode_{mode}_tokens" if mode in ("mean", "max") else mode]
    else:  # older ones: one boolean per mode
        modes = [k for k, v in config.items() if k.startswith("pooling_mode") and v is True]
    if modes != ["pooling_mode_mean_tokens"]:
        raise OnnxModelError(
            f"{str(model_path)!r} pools with {', '.join(modes) or 'nothing'}; the ONNX engine "
            "supports mean pooling only: use backend='torch'"
        )


# ------------------------------------------------------------------------------ export


def _export_graph(model_path: Path, target: Path) -> None:
    """Trace the transformer plus mean pooling into ``target`` (float32 ONNX)."""
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise OnnxModelError(
            f"exporting to ONNX needs torch and transformers ({exc}); install them: {EXPORT_HINT}"
        ) from exc
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError as exc:
        raise OnnxModelError(
            f"exporting to ONNX needs the onnx package (once); install it: {EXPORT_HINT}"
        ) from exc

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from langchain_fusion.dense._model import quiet_weight_loading

    with quiet_weight_loading():
        model = AutoModel.from_pretrained(str(model_path), attn_implementation="eager")
    model.eval()

    class _MeanPooled(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    sample = torch.ones((2, 8), dtype=torch.long)
    axes = {"batch": 0, "tokens": 1}
    dynamic = {name: {axes["batch"]: "batch", axes["tokens"]: "tokens"} for name in _INPUTS}
    dynamic["sentence_embedding"] = {0: "batch"}
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter about constant shapes
        torch.onnx.export(
            _MeanPooled(model),
            (sample, sample, torch.zeros_like(sample)),
            str(target),
            input_names=list(_INPUTS),
            output_names=["sentence_embedding"],
            dynamic_axes=dynamic,
            opset_version=_OPSET,
            dynamo=False,
        )


def _quantize(source: Path, target: Path) -> None:
    """Write an int8 (dynamic, weights-only) copy of ``source``."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise OnnxModelError(
            f"int8 quantisation needs onnxruntime and onnx ({exc}); install them: {EXPORT_HINT}"
        ) from exc
    # Per-channel scales on the MatMul weights only: per-tensor scales, or quantising the
    # embedding tables too, turn cosines to the float32 vectors from ~0.99 into ~0.94.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser's advice to pre-process goes to the root logger
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        )
    finally:
        root.setLevel(level)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def export_onnx(
    model_path: str | Path | None = None,
    *,
    cache_dir: str | Path | None = None,
    force: bool = False,
) -> Path:
    """Export a sentence-transformers model to ONNX (float32 and int8) into the cache, once.

    Returns the existing entry when one with a valid manifest is there already (``force=True``
    replaces it). The entry is built in a temporary directory and renamed into place.

    Args:
        model_path: A local sentence-transformers directory; ``None`` is the bundled
            all-MiniLM-L6-v2.
        cache_dir: The cache root (default :func:`default_cache_dir`).
        force: Export again even if a valid entry exists.

    Returns:
        The entry directory, ``<cache_dir>/<model fingerprint>``.

    Raises:
        OnnxModelError: The cache directory cannot be written, the model directory is not a
            mean-pooling sentence-transformers model, or torch/transformers/onnx are missing.

    Example:
        >>> export_onnx("/nonexistent/model")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        langchain_fusion.dense.onnx.OnnxModelError: '/nonexistent/model' has no ...

    """
    source = Path(model_path) if model_path is not None else Path(_bundled_model_path())
    fingerprint = model_fingerprint(source)
    _check_pooling(source)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    entry = root / fingerprint
    if not force and _read_manifest(entry, fingerprint) is not None:
        return entry
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = (root / f".{fingerprint}.lock").open("a")
    except OSError as exc:
        raise OnnxModelError(
            f"cannot write the ONNX cache directory {str(root)!r} ({exc.strerror or exc}); "
            f"make it writable or set {CACHE_ENV} to a writable directory"
        ) from exc
    with lock:
        _lock_file(lock)  # one export per model at a time, across processes
        if not force and _read_manifest(entry, fingerprint) is not None:
            return entry  # another process exported it while we waited
        _export_entry(source, root, entry, fingerprint)
    return entry


def _lock_file(handle: Any) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: concurrent exports still end atomically
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)


def _export_entry(source: Path, root: Path, entry: Path, fingerprint: str) -> None:
    """Export into a temporary directory under ``root`` and rename it to ``entry``."""
    try:
        work = Path(tempfile.mkdtemp(prefix=f".{fingerprint}.tmp-", dir=root))
    except OSError as exc:
        raise OnnxModelError(
            f"cannot write the ONNX cache directory {str(root)!r} ({exc.strerror or exc}); "
            f"make it writable or set {CACHE_ENV} to a writable directory"
        ) from exc
    try:
        log.info("exporting %s to ONNX into %s (once)", source, entry)
        _export_graph(source, work / _FP32_FILE)
        _quantize(work / _FP32_FILE, work / _INT8_FILE)
        files = {}
        for name in (_FP32_FILE, _INT8_FILE):
            _fsync_file(work / name)
            files[name] = {"xxh3_128": _xxh3(work / name), "size": (work / name).stat().st_size}
        manifest = {
            "format": _FORMAT,
            "fingerprint": fingerprint,
            "model": source.name,
            "source": str(source),
            "max_seq_length": _max_seq_length(source),
            "pooling": "mean",
            "opset": _OPSET,
            "files": files,
        }
        with (work / _MANIFEST).open("w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        _publish(work, entry)
    except BaseException as exc:
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(exc, OSError):
            raise OnnxModelError(
                f"writing the ONNX export into {str(root)!r} failed ({exc.strerror or exc}); "
                f"free some space or set {CACHE_ENV} to another directory"
            ) from exc
        if isinstance(exc, Exception) and not isinstance(exc, OnnxModelError):
            detail = (str(exc).strip().splitlines() or [""])[0][:200]
            raise OnnxModelError(
                f"exporting {str(source)!r} to ONNX failed ({type(exc).__name__}: {detail}); "
                "use backend='torch'"
            ) from exc
        raise


def _publish(work: Path, entry: Path) -> None:
    """Rename the finished ``work`` directory to ``entry`` (replacing an invalid old entry)."""
    if entry.exists():
        # An old entry (corrupt, or force=True): move it aside first, then delete it; a reader
        # holding its bytes already is unaffected.
        aside = Path(tempfile.mkdtemp(prefix=f".{entry.name}.old-", dir=entry.parent))
        try:
            entry.rename(aside / "entry")
        except FileNotFoundError:
            pass
        finally:
            shutil.rmtree(aside, ignore_errors=True)
    try:
        work.rename(entry)
    except OSError:
        if _read_manifest(entry, entry.name) is None:
            raise
        shutil.rmtree(work, ignore_errors=True)  # a concurrent export won the race
    with contextlib.suppress(OSError):  # make the rename durable where the OS allows it
        fd = os.open(entry.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _read_manifest(entry: Path, fingerprint: str) -> dict[str, Any] | None:
    """Return the entry's manifest if present, well formed and for ``fingerprint``."""
    try:
        manifest = json.loads((entry / _MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != _FORMAT
        or manifest.get("fingerprint") != fingerprint
        or not isinstance(manifest.get("files"), dict)
    ):
        return None
    return manifest


def _bundled_model_path() -> str:
    from langchain_fusion.dense._model import default_model_path

    return default_model_path()


# ------------------------------------------------------------------------------ loading


def _load_bytes(entry: Path, fingerprint: str, name: str) -> tuple[bytes, dict[str, Any]]:
    """Read one exported graph and check it against the manifest (raises OnnxModelError)."""
    manifest = _read_manifest(entry, fingerprint)
    if manifest is None:
        if (entry / _MANIFEST).is_file():
            raise OnnxModelError(
                f"the ONNX export in {str(entry)!r} has a manifest for another model or format"
            )
        raise OnnxModelError(f"no ONNX export in {str(entry)!r}")
    expected = manifest["files"].get(name)
    try:
        data = (entry / name).read_bytes()
    except OSError as exc:
        raise OnnxModelError(
            f"the ONNX export {str(entry / name)!r} cannot be read ({exc.strerror or exc})"
        ) from exc
    import xxhash

    if (
        not isinstance(expected, dict)
        or expected.get("size") != len(data)
        or expected.get("xxh3_128") != xxhash.xxh3_128_hexdigest(data)
    ):
        raise OnnxModelError(
            f"the ONNX export {str(entry / name)!r} fails its checksum (truncated or altered)"
        )
    return data, manifest


@dataclass
class OnnxEncoder:
    """A loaded ONNX model and its tokenizer: turns texts into unit-length vectors.

    Every text runs alone, unpadded, so its vector never depends on the texts around it (with
    the int8 graph, activation scales are computed per run: in a padded batch they would be
    shared by the batch). One text is run on ``session``, which uses every core; many are run
    one per core at a time on a single-threaded session built on first need (``make_session``),
    which on two cores is 1.4x the rate of padded batches of 64 (float32) and 1.5x (int8).
    Built by :func:`load_encoder`; thread-safe (ONNX Runtime sessions and Rust tokenizers are).
    """

    session: Any
    tokenizer: Any
    dimension: int
    quantized: bool
    entry: Path
    make_session: Any = None  # threads -> a new session of the same graph (checked again)
    threads: int = 1
    _worker: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def encode(
        self, texts: Sequence[str], *, batch_size: int = _BLOCK, progress: bool = False
    ) -> NDArray[np.float32]:
        """Embed ``texts``: tokenize, run each text alone (one per core), normalise.

        ``batch_size`` is how many texts are tokenized at a time (memory, not results).
        Needs an exported model; see ``LocalEmbeddings(backend="onnx")``.
        """
        n = len(texts)
        out = np.empty((n, self.dimension), dtype=np.float32)
        if n == 0:
            return out
        parallel = n > 1 and self.threads > 1 and self.make_session is not None
        session = self._worker_session() if parallel else self.session
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, desc="Embedding", unit="chunk")
        try:
            block = max(batch_size, _BLOCK)
            for start in range(0, n, block):
                encodings = self.tokenizer.encode_batch(list(texts[start : start + block]))
                if parallel:
                    self._run_parallel(session, encodings, out[start : start + block], bar)
                else:
                    for i, enc in enumerate(encodings):
                        out[start + i] = _run_one(session, enc)
                        if bar is not None:
                            bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return out

    def _worker_session(self) -> Any:
        with self._lock:
            if self._worker is None:
                self._worker = self.make_session(1)
            return self._worker

    def _run_parallel(self, session: Any, encodings: list[Any], out: Any, bar: Any) -> None:
        """Run ``encodings`` on ``self.threads`` threads sharing one single-threaded session."""
        # longest first, so the last texts to finish are short ones (the cores end together)
        order = iter(sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids)))
        lock = threading.Lock()
        failed: list[BaseException] = []

        def work() -> None:
            while not failed:
                with lock:
                    i = next(order, None)
                if i is None:
                    return
                try:
                    out[i] = _run_one(session, encodings[i])
                except BaseException as exc:  # stop the other workers too, then re-raise
                    failed.append(exc)
                    return
                if bar is not None:
                    with lock:
                        bar.update(1)

        workers = [threading.Thread(target=work, daemon=True) for _ in range(self.threads)]
        for worker in workers:
            worker.start()
        try:
            for worker in workers:
                worker.join()
        except BaseException as exc:  # Ctrl-C in the caller: the workers stop after their text
            failed.append(exc)
            raise
        if failed:
            raise failed[0]


def _run_one(session: Any, encoding: Any) -> NDArray[np.float32]:
    """One text through the graph: its own length, no padding; returns the unit vector."""
    ids = np.asarray(encoding.ids, dtype=np.int64)[None, :]
    feeds = {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "token_type_ids": np.asarray(encoding.type_ids, dtype=np.int64)[None, :],
    }
    pooled = session.run(None, feeds)[0][0]
    norm = float(np.linalg.norm(pooled))
    result: NDArray[np.float32] = pooled / max(norm, 1e-12)
    return result


def _threads() -> int:
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        count = os.cpu_count() or 1
    return max(1, count)


def load_encoder(
    model_path: str | Path,
    *,
    quantized: bool,
    cache_dir: str | Path | None = None,
    export: bool = True,
) -> OnnxEncoder:
    """Load (exporting first if needed) the ONNX engine for a model directory.

    A missing entry is exported when ``export`` is true; an entry that fails its checks is
    exported again (the bad entry is replaced atomically) with a warning.

    Raises:
        OnnxModelError: onnxruntime or tokenizers missing, the model has no ``tokenizer.json``,
            the export is invalid and cannot be redone, or the cache cannot be written.

    Example:
        >>> load_encoder("/nonexistent", quantized=False)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        langchain_fusion.dense.onnx.OnnxModelError: ...

    """
    try:
        import onnxruntime as ort
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise OnnxModelError(
            f"the ONNX engine needs onnxruntime and tokenizers ({exc}); install the local "
            'extra: pip install "langchain-fusion[local]"'
        ) from exc
    source = Path(model_path)
    tokenizer_file = source / "tokenizer.json"
    fingerprint = model_fingerprint(source)
    if not tokenizer_file.is_file():
        raise OnnxModelError(
            f"{str(source)!r} has no tokenizer.json (a fast tokenizer); use backend='torch'"
        )
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    entry = root / fingerprint
    name = _INT8_FILE if quantized else _FP32_FILE
    try:
        data, manifest = _load_bytes(entry, fingerprint, name)
    except OnnxModelError as exc:
        if not export:
            raise
        if (entry / _MANIFEST).exists() or entry.exists():
            _warn_once(f"{exc}; exporting it again")
        export_onnx(source, cache_dir=root, force=entry.exists())
        data, manifest = _load_bytes(entry, fingerprint, name)

    def make_session(threads: int, graph: bytes | None = None) -> Any:
        if graph is None:  # a later session: read and check the file again
            graph, _ = _load_bytes(entry, fingerprint, name)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise OnnxModelError(
                f"ONNX Runtime cannot load {str(entry / name)!r} ({str(exc).splitlines()[0]}); "
                f"delete {str(entry)!r} to export it again"
            ) from exc

    threads = _threads()
    session = make_session(threads, data)
    del data
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=int(manifest.get("max_seq_length", 256)))
    dimension = int(session.get_outputs()[0].shape[-1])
    return OnnxEncoder(
        session, tokenizer, dimension, quantized, entry, make_session=make_session, threads=threads
    )


_WARNED: set[str] = set()
_WARN_LOCK = threading.Lock()


def _warn_once(message: str) -> None:
    """Warn (RuntimeWarning) once per process per message."""
    with _WARN_LOCK:
        if message in _WARNED:
            return
        _WARNED.add(message)
    import warnings

    warnings.warn(message, RuntimeWarning, stacklevel=3)
