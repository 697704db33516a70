"""Shared helpers for the benchmark scripts: data location, cached embeddings, timing, tables."""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_CACHE = Path(
    os.environ.get("LANGCHAIN_FUSION_CACHE", Path.home() / ".cache" / "langchain-fusion")
)


def data_dir(arg: str | None) -> Path:
    path = Path(arg) if arg else Path(os.environ.get("LANGCHAIN_FUSION_DATA", DEFAULT_DATA))
    if not (path / "beir").is_dir():
        raise SystemExit(
            f"data directory {path} has no beir/ folder: pass --data PATH/TO/shared/data"
        )
    return path


def _digest(texts: Sequence[str]) -> str:
    h = hashlib.sha1(usedforsecurity=False)
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


class CachedEmbeddings(Embeddings):
    """Embeddings whose vectors for known texts come from a table computed once.

    The benchmark then measures retrieval, not the embedding model: the retrievers still call
    ``embed_documents`` / ``embed_query`` through the normal LangChain interface.
    """

    def __init__(self, base: Embeddings, table: dict[str, np.ndarray]) -> None:
        self.base = base
        self.table = table

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        missing = [t for t in texts if t not in self.table]
        if missing:
            for t, v in zip(missing, self.base.embed_documents(missing)):
                self.table[t] = np.asarray(v, dtype=np.float32)
        return [self.table[t].tolist() for t in texts]

    def embed_query(self, text: str) -> list[float]:
        if text not in self.table:
            self.table[text] = np.asarray(self.base.embed_query(text), dtype=np.float32)
        return self.table[text].tolist()


def embed_cached(texts: Sequence[str], base: Embeddings, cache: Path, name: str) -> np.ndarray:
    """Embed ``texts`` with ``base`` once; later runs read ``cache/name-<digest>.npy``."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{name}-{_digest(texts)}.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    t0 = time.perf_counter()
    vecs = np.asarray(base.embed_documents(list(texts)), dtype=np.float32)
    np.save(path, vecs, allow_pickle=False)
    print(f"  embedded {len(texts)} texts for {name} in {time.perf_counter() - t0:.0f} s -> {path}")
    return vecs


def beir_with_embeddings(
    name: str, splits: Sequence[str], root: Path, cache: Path
) -> tuple[CachedEmbeddings, dict[str, Any]]:
    """Load BEIR ``name`` (every split) and cached local embeddings of its corpus and queries.

    Returns the embeddings (corpus texts and every split's queries precomputed) and
    ``{split: BeirDataset}``. The vectors are float32 (the reference MiniLM vectors, the same
    from torch and ONNX); the int8 default of ``LocalEmbeddings`` moves the fused nDCG@10 by at
    most 0.0011 on these collections (``benchmarks/embeddings.py``).
    """
    from langchain_fusion import LocalEmbeddings
    from langchain_fusion.evaluation import load_beir

    data = {split: load_beir(root / "beir" / name, split) for split in splits}
    model = LocalEmbeddings(batch_size=32, quantize=False)
    return cached_embeddings(model, name, data, cache), data


def cached_embeddings(
    model: Embeddings, name: str, data: dict[str, Any], cache: Path
) -> CachedEmbeddings:
    """``model``'s vectors of the corpus and of every split's queries, computed once.

    ``data`` is ``{split: BeirDataset}`` (one corpus); the files are ``cache/name-corpus-*.npy``
    and ``cache/name-<split>-queries-*.npy``.
    """
    texts = [d.page_content for d in next(iter(data.values())).corpus]
    table = dict(zip(texts, embed_cached(texts, model, cache, f"{name}-corpus")))
    for split, ds in data.items():
        queries = list(ds.queries.values())
        table.update(zip(queries, embed_cached(queries, model, cache, f"{name}-{split}-queries")))
    return CachedEmbeddings(model, table)


def build_index(corpus: Sequence[Any], emb: Embeddings, **bm25: float) -> Any:
    """A ``HybridIndex`` of ``corpus`` (BM25 parameters as given)."""
    from langchain_fusion import HybridIndex

    index = HybridIndex(emb, **bm25)
    index.add_documents(list(corpus))
    return index


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 100 else f"{v:,.0f}"
        return str(v)

    cells = [[fmt(v) for v in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    line = "| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    return "\n".join([line, sep, *body])


def save_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(path)
