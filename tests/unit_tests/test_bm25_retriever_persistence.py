"""BM25Retriever.save / load: the index's atomic, checksummed format (issue 15 item 2)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from langchain_core.documents import Document

from langchain_fusion import BM25Retriever, HybridIndex
from langchain_fusion.persistence import CorruptIndexError

TEXTS = [f"document {i} about topic{i % 7} and word{i % 13}" for i in range(300)]


def _saved(tmp_path: Path) -> tuple[BM25Retriever, Path]:
    r = BM25Retriever.from_texts(TEXTS, [{"n": i} for i in range(300)], k=5)
    r.delete([r.add_documents([Document("temporary topic3")])[0]])
    return r, r.save(tmp_path / "bm25")


def _data_files(path: Path) -> list[str]:
    return sorted(json.loads((path / "manifest.json").read_text())["files"])


def test_layout_is_the_index_format(tmp_path: Path) -> None:
    _, path = _saved(tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == "langchain-fusion-index"
    assert manifest["parameters"]["retriever"] == {
        "face": "BM25Retriever",
        "k": 5,
        "k_set": True,
        "filter": None,
        "epsilon": 0.25,
    }
    assert {f.split("/")[0] for f in manifest["files"]} == {"docstore", "bm25"}


def test_every_flipped_byte_is_detected_naming_the_file(tmp_path: Path) -> None:
    _, path = _saved(tmp_path)
    for rel in _data_files(path):
        target = path / rel
        original = target.read_bytes()
        if not original:
            continue
        damaged = bytearray(original)
        damaged[len(damaged) // 2] ^= 0x01
        target.write_bytes(bytes(damaged))
        with pytest.raises(CorruptIndexError, match=rf"{rel} in the index .* does not match"):
            BM25Retriever.load(path)
        target.write_bytes(original)
    BM25Retriever.load(path)


def test_every_truncated_file_is_detected_naming_the_file(tmp_path: Path) -> None:
    _, path = _saved(tmp_path)
    for rel in _data_files(path):
        target = path / rel
        original = target.read_bytes()
        if not original:
            continue
        target.write_bytes(original[: len(original) // 2])
        with pytest.raises(CorruptIndexError, match=rf"{rel} in the index .* has \d+ bytes"):
            BM25Retriever.load(path)
        target.write_bytes(original)


def test_a_missing_file_and_a_hybrid_index_are_refused(tmp_path: Path) -> None:
    r, path = _saved(tmp_path)
    r.save(tmp_path / "bm25-ok")
    (path / "bm25" / "doc_len.npy").unlink()
    with pytest.raises(CorruptIndexError, match=r"bm25/doc_len\.npy is missing"):
        BM25Retriever.load(path)
    from langchain_core.embeddings import DeterministicFakeEmbedding

    HybridIndex.from_texts(["x"], DeterministicFakeEmbedding(size=4)).save(tmp_path / "hybrid")
    with pytest.raises(ValueError, match="holds a HybridIndex, not a BM25Retriever"):
        BM25Retriever.load(tmp_path / "hybrid")
    with pytest.raises(ValueError, match=r"holds a BM25Retriever: BM25Retriever\.load"):
        HybridIndex.load(path.parent / "bm25-ok", DeterministicFakeEmbedding(size=4))


def _keep_saving(path: str, ready: object) -> None:
    words = ["alpha", "beta"]
    versions = [
        BM25Retriever.from_texts([f"{w} text {i} " + "pad " * 50 for i in range(1000)], k=3)
        for w in words
    ]
    i = 0
    while True:
        versions[i % 2].save(path)
        i += 1
        ready.set()  # type: ignore[attr-defined]


def test_killed_saves_leave_a_complete_version(tmp_path: Path) -> None:
    # Kill a process at random moments while it saves one of two versions again and again:
    # what is at the path afterwards always loads, and answers from one version only.
    path = str(tmp_path / "bm25")
    ctx = mp.get_context("spawn")
    rng = np.random.default_rng(0)
    for _ in range(4):
        ready = ctx.Event()
        saver = ctx.Process(target=_keep_saving, args=(path, ready))
        saver.start()
        assert ready.wait(120)
        time.sleep(float(rng.uniform(0.0, 0.4)))
        os.kill(saver.pid, signal.SIGKILL)  # type: ignore[arg-type]
        saver.join()
        loaded = BM25Retriever.load(path)
        for word in ("alpha", "beta"):
            hits = loaded.invoke(word)
            assert all(word in d.page_content for d in hits)
        assert len(loaded.invoke("alpha")) + len(loaded.invoke("beta")) == 3
        assert len(loaded) == 1000


def test_a_save_of_an_earlier_release_still_loads(tmp_path: Path) -> None:
    from langchain_fusion.lexical import BM25Index

    index = BM25Index()
    index.add(["old alpha", "gone", "old beta"])
    index.remove([1])
    index.save(tmp_path / "index")
    records = [
        {"id": "a", "page_content": "old alpha", "metadata": {"n": 1}},
        {"id": "b", "page_content": "old beta", "metadata": {}},
    ]
    payload = {
        "format": "langchain-fusion/bm25-retriever",
        "version": 1,
        "k": 2,
        "filter": None,
        "slots": [0, 2],
        "documents": records,
    }
    (tmp_path / "documents.json").write_text(json.dumps(payload))
    with pytest.warns(UserWarning, match="without checksums"):
        loaded = BM25Retriever.load(tmp_path)
    assert [d.id for d in loaded.invoke("old")] == ["a", "b"]
    assert loaded.invoke("alpha", filter={"n": 1})[0].metadata == {"n": 1}
    (tmp_path / "documents.json").write_text("{broken")
    with (
        pytest.warns(UserWarning, match="without checksums"),
        pytest.raises(CorruptIndexError, match=r"documents\.json"),
    ):
        BM25Retriever.load(tmp_path)
