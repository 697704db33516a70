"""The Collection core, the back-end seam, and the persistence attacks of issue 15 (1, 3, 5)."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_fusion import HybridIndex
from langchain_fusion.backend import Backend, SupportsJointSearch, joint_search
from langchain_fusion.collection import Collection
from langchain_fusion.persistence import CorruptIndexError, file_xxh3_128

DIM = 8
N = 24


def _version(tag: str) -> tuple[list[str], list[str], np.ndarray]:
    rng = np.random.default_rng(1 if tag == "A" else 2)
    vectors = rng.normal(size=(N, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    word = "alpha" if tag == "A" else "beta"
    return [f"d{i}" for i in range(N)], [f"{word} text {i}" for i in range(N)], vectors


def _build(tag: str, kind: str = "auto") -> HybridIndex:
    ids, texts, vectors = _version(tag)
    index = HybridIndex(DeterministicFakeEmbedding(size=DIM), dense_kind=kind)
    index.add_embeddings(texts, vectors, ids=ids)
    return index


def _saver(path: str, stop: object, ready: object) -> None:
    versions = [_build("A"), _build("B")]
    i = 0
    while not stop.is_set():  # type: ignore[attr-defined]
        versions[i % 2].save(path)
        i += 1
        ready.set()  # type: ignore[attr-defined]


def test_load_while_another_process_saves_never_mixes_nor_fails(tmp_path: Path) -> None:
    # issue 15 item 1 (bounded here; benchmarks/attack_load.py runs 10,000 loads)
    path = str(tmp_path / "index")
    _build("A").save(path)
    ctx = mp.get_context("spawn")
    stop, ready = ctx.Event(), ctx.Event()
    saver = ctx.Process(target=_saver, args=(path, stop, ready))
    saver.start()
    outcomes: dict[str, int] = {}
    try:
        assert ready.wait(60)
        vectors = {tag: _version(tag)[2] for tag in ("A", "B")}
        deadline = time.monotonic() + 60
        for _ in range(300):
            if time.monotonic() > deadline:
                break
            index = HybridIndex.load(path, DeterministicFakeEmbedding(size=DIM))
            text_tag = "A" if index.get_by_ids(["d0"])[0].page_content.startswith("a") else "B"
            kw_tag = "A" if index.search_keyword("alpha", N)[0] else "B"
            stored = index.get_vectors([f"d{i}" for i in range(N)])
            dense_tag = "A" if np.allclose(stored, vectors["A"], atol=1e-5) else "B"
            assert np.allclose(stored, vectors[dense_tag], atol=1e-5)
            key = text_tag if text_tag == kw_tag == dense_tag else "mixed"
            outcomes[key] = outcomes.get(key, 0) + 1
    finally:
        stop.set()
        saver.join(30)
    assert "mixed" not in outcomes
    assert sum(outcomes.values()) >= 50


def test_collection_is_a_backend_and_joint_search_matches_four_calls() -> None:
    index = _build("A")
    backend = index.collection
    assert isinstance(backend, Backend) and isinstance(backend, SupportsJointSearch)
    query_vector = _version("A")[2][3]
    joint = joint_search(backend, "alpha text 3", query_vector, 5, 5, filter=None)
    dense = backend.search_dense(query_vector, 5)
    keyword = backend.search_keyword("alpha text 3", 5)
    assert joint.dense.ids == dense.ids and joint.keyword.ids == keyword.ids
    assert joint.ids[: len(dense.ids)] == dense.ids
    assert joint.dense_scores is not None and joint.keyword_scores is not None
    np.testing.assert_allclose(joint.dense_scores, backend.score_dense(query_vector, joint.ids))
    np.testing.assert_allclose(
        joint.keyword_scores, backend.score_keyword("alpha text 3", joint.ids)
    )
    stats = backend.stats()
    assert stats.n_docs == N and stats.dim == DIM and stats.bm25["method"] == "lucene"
    assert stats.embedding["class"].endswith("DeterministicFakeEmbedding")


def test_keyword_only_collection_refuses_vectors() -> None:
    c = Collection()
    with pytest.raises(ValueError, match="keyword-only"):
        c.add(["a"], ["x"], [None], np.ones((1, 2), dtype=np.float32))
    assert c.add(["a"], ["x y"], [{"p": 1}], None) == ["a"]
    assert c.search_keyword("y", 2, filter={"p": 1}).ids == ["a"]


# ----------------------------------------------------------------- issue 15 item 3: malformed


def _saved(tmp_path: Path) -> Path:
    return _build("A").save(tmp_path / "idx")


def _resign(path: Path) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    for rel, entry in manifest["files"].items():
        entry["size"] = (path / rel).stat().st_size
        entry["xxh3_128"] = file_xxh3_128(path / rel)
    (path / "manifest.json").write_text(json.dumps(manifest))


def _load(path: Path) -> HybridIndex:
    return HybridIndex.load(path, DeterministicFakeEmbedding(size=DIM))


@pytest.mark.filterwarnings("ignore:the index was built with:UserWarning")
def test_every_single_bit_flip_in_the_manifest_is_a_named_error(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    original = (path / "manifest.json").read_bytes()
    rng = np.random.default_rng(0)
    positions = rng.choice(len(original) * 8, size=150, replace=False)
    loaded = 0
    for bit in positions.tolist():
        flipped = bytearray(original)
        flipped[bit // 8] ^= 1 << (bit % 8)
        (path / "manifest.json").write_bytes(bytes(flipped))
        try:
            _load(path)
            loaded += 1  # e.g. a flipped bit in the creation date: harmless
        except (CorruptIndexError, ValueError) as exc:
            message = str(exc)
            assert "\n" not in message
            assert (
                "manifest.json" in message
                or "not a langchain-fusion index" in message
                or ("embedding" in message)
            ), message
    (path / "manifest.json").write_bytes(original)
    _load(path)
    assert loaded < len(positions)


def test_huge_number_in_the_manifest_is_corrupt_not_overflow(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["parameters"]["dense"]["hnsw_m"] = 1e400  # json: Infinity -> int() overflows
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CorruptIndexError, match=r"manifest\.json"):
        _load(path)


def test_deeply_nested_manifest_is_corrupt_not_recursion(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    depth = 200_000
    (path / "manifest.json").write_text("[" * depth + "]" * depth)
    with pytest.raises(CorruptIndexError, match=r"manifest\.json"):
        _load(path)


def test_foreign_faiss_file_is_corrupt_naming_dense(tmp_path: Path) -> None:
    path = _build("A", "hnsw").save(tmp_path / "idx")
    assert (path / "dense" / "faiss.index").exists()
    (path / "dense" / "faiss.index").write_bytes(b"\x00garbage that is not a FAISS index" * 50)
    _resign(path)  # whoever replaced it also re-signed the manifest
    with pytest.raises(CorruptIndexError, match=r"dense/' in the index is damaged"):
        _load(path)
    assert (path / "dense" / "faiss.index").exists()


@pytest.mark.parametrize("damage", ["deep", "format1"])
def test_cli_prints_one_line_for_a_malformed_index(
    tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from langchain_fusion.cli import main

    path = _saved(tmp_path)
    manifest = (path / "manifest.json").read_text()
    if damage == "deep":
        manifest = "[" * 200_000 + "]" * 200_000
    else:
        manifest = manifest.replace('"format_version": 3', '"format_version": 1')
    (path / "manifest.json").write_text(manifest)
    assert main(["search", str(path), "anything"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "manifest.json" in err and "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_format_1_flip_names_the_manifest(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    text = (path / "manifest.json").read_text()
    # '3' -> '1' is a one-bit flip: the manifest now claims SHA-256 checksums it does not hold
    (path / "manifest.json").write_text(text.replace('"format_version": 3', '"format_version": 1'))
    with pytest.raises(CorruptIndexError, match=r"manifest.json' is damaged: .*format version 1"):
        _load(path)


def test_foreign_format_version_names_the_manifest(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    text = (path / "manifest.json").read_text()
    (path / "manifest.json").write_text(text.replace('"format_version": 3', '"format_version": 9'))
    with pytest.raises(ValueError, match=r"manifest.json' is a langchain-fusion index manifest"):
        _load(path)


# ----------------------------------------------------------------- issue 15 item 5: metadata


def test_int_keys_and_cycles_in_metadata_are_refused_when_added() -> None:
    index = HybridIndex(DeterministicFakeEmbedding(size=DIM))
    with pytest.raises(ValueError, match=r"^metadatas\[1\]\['a'\]\[0\] has a key of type int"):
        index.add_texts(["x", "y"], [{}, {"a": [{1: "z"}]}])  # type: ignore[dict-item]
    loop: dict[str, object] = {"k": 1}
    loop["me"] = loop
    with pytest.raises(ValueError, match=r"metadatas\[0\]\['me'\] refers back"):
        index.add_texts(["x"], [loop])
    listy: list[object] = []
    listy.append(listy)
    with pytest.raises(ValueError, match=r"metadatas\[0\]\['l'\]\[0\] refers back to a list"):
        index.add_texts(["x"], [{"l": listy}])
    deep: dict[str, object] = {}
    node = deep
    for _ in range(500):
        node["n"] = {}
        node = node["n"]  # type: ignore[assignment]
    with pytest.raises(ValueError, match="nested more than 64 levels"):
        index.add_texts(["x"], [deep])
    assert len(index) == 0
    shared = {"tag": "x"}
    index.add_texts(["a", "b"], [{"m": shared, "n": shared}, {"m": [shared, shared]}])
    assert len(index) == 2  # a value shared twice is not a cycle
