"""Attack: load an index while other processes keep saving new versions to the same path.

Two versions of one index are saved in turn by ``--savers`` processes: version A (texts
"alpha ...", vectors from seed 1) and version B (texts "beta ...", vectors from seed 2), with the
same ids and sizes, so that a mixed load passes every slot-count check. The main process loads
the index ``--loads`` times and classifies each load:

* ``A`` / ``B``: every part (documents, BM25 terms, dense vectors) from one version;
* ``mixed``: parts from different versions (e.g. documents from A, vectors from B);
* ``false error``: an exception (``CorruptIndexError``, ``FileNotFoundError``...) although every
  version ever saved was complete.

Target: 0 mixed, 0 false errors. Run it against any tree (``PYTHONPATH=<tree>``)::

    PYTHONPATH=$PWD python benchmarks/attack_load.py --loads 10000 --savers 1
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from langchain_core.embeddings import DeterministicFakeEmbedding

N_DOCS = 64
DIM = 16


def _version(tag: str) -> tuple[list[str], list[str], np.ndarray]:
    seed = 1 if tag == "A" else 2
    word = "alpha" if tag == "A" else "beta"
    ids = [f"d{i}" for i in range(N_DOCS)]
    texts = [f"{word} document number {i} " + "filler " * (i % 7) for i in range(N_DOCS)]
    vectors = np.random.default_rng(seed).normal(size=(N_DOCS, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return ids, texts, vectors


def _build(tag: str):  # type: ignore[no-untyped-def]
    from langchain_fusion import HybridIndex

    ids, texts, vectors = _version(tag)
    index = HybridIndex(DeterministicFakeEmbedding(size=DIM))
    index.add_embeddings(texts, vectors, ids=ids)
    return index


def _saver(path: str, stop: mp.synchronize.Event, offset: int) -> None:  # type: ignore[name-defined]
    versions = [_build("A"), _build("B")]
    i = offset
    while not stop.is_set():
        versions[i % 2].save(path)
        i += 1


def _classify(index: object) -> str:
    ids, texts, vectors = {}, {}, {}
    for tag in ("A", "B"):
        ids[tag], texts[tag], vectors[tag] = _version(tag)
    docs = index.get_by_ids(["d0", f"d{N_DOCS - 1}"])  # type: ignore[attr-defined]
    doc_tags = {"A" if d.page_content.startswith("alpha") else "B" for d in docs}
    kw_a = len(index.search_keyword("alpha", N_DOCS)[0])  # type: ignore[attr-defined]
    kw_b = len(index.search_keyword("beta", N_DOCS)[0])  # type: ignore[attr-defined]
    kw_tags = ({"A"} if kw_a else set()) | ({"B"} if kw_b else set())
    stored = index.get_vectors(ids["A"])  # type: ignore[attr-defined]
    dense_tags = {tag for tag in ("A", "B") if np.allclose(stored, vectors[tag], atol=1e-5)}
    tags = doc_tags | kw_tags | dense_tags
    if len(doc_tags) == 1 and doc_tags == kw_tags == dense_tags:
        return next(iter(tags))
    return "mixed"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=10_000)
    parser.add_argument("--savers", type=int, default=1)
    parser.add_argument("--verify", choices=["full", "size"], default="full")
    args = parser.parse_args(argv)
    import langchain_fusion
    from langchain_fusion import HybridIndex

    emb = DeterministicFakeEmbedding(size=DIM)
    counts: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "index")
        _build("A").save(path)
        ctx = mp.get_context("spawn")
        stop = ctx.Event()
        savers = [ctx.Process(target=_saver, args=(path, stop, i)) for i in range(args.savers)]
        for p in savers:
            p.start()
        time.sleep(2.0)  # let the savers start writing
        start = time.perf_counter()
        try:
            for _ in range(args.loads):
                try:
                    index = HybridIndex.load(path, emb, verify=args.verify)
                except Exception as exc:
                    counts["false error"] += 1
                    errors[f"{type(exc).__name__}: {str(exc)[:90]}"] += 1
                    continue
                counts[_classify(index)] += 1
        finally:
            stop.set()
            for p in savers:
                p.join()
        elapsed = time.perf_counter() - start
    print(f"code: {Path(langchain_fusion.__file__).parent}")
    print(
        f"{args.loads} loads against {args.savers} saver(s), verify={args.verify}, {elapsed:.1f} s"
    )
    print(f"{'outcome':<14}{'count':>8}")
    for key in ("A", "B", "mixed", "false error"):
        print(f"{key:<14}{counts[key]:>8}")
    for message, n in errors.most_common(5):
        print(f"  {n:>6} x {message}")
    sys.exit(0 if not counts["mixed"] and not counts["false error"] else 1)


if __name__ == "__main__":
    main()
