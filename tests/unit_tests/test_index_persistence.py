"""HybridIndex.save / load: round trips, manifest, integrity checks, atomicity, crash safety."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from langchain_fusion import persistence
from langchain_fusion.dense.index import DenseIndex
from langchain_fusion.index import HybridIndex
from langchain_fusion.lexical.tokenizer import Tokenizer
from langchain_fusion.persistence import CorruptIndexError

REPO = Path(__file__).resolve().parents[2]


class CountingEmbedding(DeterministicFakeEmbedding):
    """DeterministicFakeEmbedding that counts calls (to prove loading never embeds)."""

    calls: int = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return super().embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return super().embed_query(text)


def build(n: int = 40, size: int = 16, **kwargs: Any) -> HybridIndex:
    texts = [f"doc {i} about {['cats', 'dogs', 'birds'][i % 3]} and number{i}" for i in range(n)]
    metas: list[dict[str, Any]] = [
        {"animal": ["cats", "dogs", "birds"][i % 3], "i": i, "nested": {"tags": ["x", i]}}
        for i in range(n)
    ]
    metas[0] = {}
    metas[1] = {"unicode": "naïve café ☕", "none": None, "float": 1.5, "flag": True}
    index = HybridIndex(DeterministicFakeEmbedding(size=size), **kwargs)
    index.add_texts(texts, metas, ids=[f"id{i}" for i in range(n)])
    return index


def observe(index: HybridIndex) -> dict[str, Any]:
    """Everything a user can observe, in comparable form."""
    q = index.embed_query("doc 5 about dogs")
    return {
        "ids": index.ids,
        "docs": index.get_by_ids(index.ids),
        "kw": [(d.id, round(s, 9)) for d, s in index.keyword_search("dogs number7", k=10)],
        "dense": [
            (d.id, round(s, 6)) for d, s in index.similarity_search_with_score_by_vector(q, 10)
        ],
        "filtered": index.search_keyword("doc", 50, filter={"animal": "birds"})[0],
        "filtered_dense": index.search_dense(q, 5, filter={"i": {"$gte": 30}})[0],
        "mmr": [d.id for d in index.max_marginal_relevance_search("doc 5 about dogs", k=3)],
    }


def leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name + "."))


# ---------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("mmap", [True, False])
def test_round_trip_is_identical(tmp_path: Path, mmap: bool) -> None:
    index = build()
    index.delete(["id3", "id4"])
    index.add_texts(["replacement for id5 about birds"], [{"animal": "birds"}], ids=["id5"])
    index.add_texts(  # a lone surrogate, as bad PDF extraction produces: JSON escapes it
        ["odd one"], [{"raw": "lone \ud800 surrogate"}], ids=["weird \udfff id"]
    )
    expected = observe(index)
    saved = index.save(tmp_path / "idx")
    assert saved == (tmp_path / "idx").absolute()
    loaded = HybridIndex.load(tmp_path / "idx", DeterministicFakeEmbedding(size=16), mmap=mmap)
    assert observe(loaded) == expected
    assert loaded.get_by_ids(["weird \udfff id"])[0].metadata == {"raw": "lone \ud800 surrogate"}
    assert loaded.get_by_ids(["id1"])[0].metadata == {
        "unicode": "naïve café ☕",
        "none": None,
        "float": 1.5,
        "flag": True,
    }
    assert len(loaded) == len(index) and loaded.n_deleted == index.n_deleted
    assert leftovers(tmp_path / "idx") == []


def test_loaded_index_accepts_updates_and_resaves_in_place(tmp_path: Path) -> None:
    path = tmp_path / "idx"
    build().save(path)
    emb = DeterministicFakeEmbedding(size=16)
    loaded = HybridIndex.load(path, emb)  # memory-mapped
    loaded.add_texts(["fresh text about lizards"], [{"animal": "lizards"}], ids=["new"])
    loaded.add_texts(["updated id7 about lizards"], ids=["id7"])
    loaded.delete(["id8"])
    expected = observe(loaded)
    assert set(loaded.search_keyword("lizard", 5)[0]) == {"new", "id7"}
    loaded.save(path)  # replaces the files this index is mapped from
    assert observe(loaded) == expected  # still works off the old mapping
    again = HybridIndex.load(path, emb)
    assert observe(again) == expected
    assert "id8" not in again and "new" in again
    assert b"number8" not in (path / "docstore" / "texts.jsonl").read_bytes()  # deleted text gone
    again.compact()
    assert observe(again) == expected


def test_empty_and_keyword_only_indexes_round_trip(tmp_path: Path) -> None:
    emb = DeterministicFakeEmbedding(size=8)
    HybridIndex(emb).save(tmp_path / "empty")
    loaded = HybridIndex.load(tmp_path / "empty", emb)
    assert len(loaded) == 0 and loaded.similarity_search("x") == []
    loaded.add_texts(["now with text"], ids=["a"])
    assert loaded.search_keyword("text", 1)[0] == ["a"] and loaded.dim == 8


def test_parameters_survive_a_round_trip(tmp_path: Path) -> None:
    tokenizer = Tokenizer(stopwords=None, stemmer=None)
    index = build(tokenizer=tokenizer, k1=1.2, b=0.5, bm25_method="bm25+", dense_kind="hnsw")
    index.save(tmp_path / "idx")
    loaded = HybridIndex.load(tmp_path / "idx", DeterministicFakeEmbedding(size=16))
    assert loaded.tokenizer == tokenizer
    assert (loaded._bm25.k1, loaded._bm25.b, loaded._bm25.method) == (1.2, 0.5, "bm25+")
    assert loaded._dense is not None and loaded._dense.active_kind == "hnsw"
    assert observe(loaded) == observe(index)


def test_manifest_contents(tmp_path: Path) -> None:
    path = build().save(tmp_path / "idx")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == "langchain-fusion-index"
    assert manifest["format_version"] == persistence.FORMAT_VERSION == 3
    assert manifest["package_version"]
    assert manifest["created"].endswith("+00:00")
    params = manifest["parameters"]
    assert params["embedding"] == {
        "class": "langchain_core.embeddings.fake.DeterministicFakeEmbedding",
        "model": None,
        "dim": 16,
    }
    assert params["tokenizer"] == Tokenizer().to_config()
    assert params["bm25"] == {"k1": 1.5, "b": 0.75, "method": "lucene", "delta": 0.5}
    assert params["n_slots"] == params["n_live"] == 40
    files = manifest["files"]
    on_disk = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    assert sorted(files) == [f for f in on_disk if f != "manifest.json"]
    assert {"docstore/texts.jsonl", "dense/vectors.npy", "bm25/bm25.json"} <= set(files)
    for rel, entry in files.items():
        data = (path / rel).read_bytes()
        assert entry == {"size": len(data), "xxh3_128": xxhash.xxh3_128(data).hexdigest()}
    # no pickle anywhere: every .npy loads with allow_pickle=False
    for npy in path.rglob("*.npy"):
        np.load(npy, allow_pickle=False)
    lines = (path / "docstore" / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 40 and json.loads(lines[2]) == {
        "animal": "birds",
        "i": 2,
        "nested": {"tags": ["x", 2]},
    }


# ---------------------------------------------------------------------------------- metadata


def test_unserialisable_metadata_fails_at_save_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "idx"
    index = build()
    index.save(path)
    before = observe(HybridIndex.load(path, DeterministicFakeEmbedding(size=16)))
    index.add_texts(["bad"], [{"ok": 1, "when": {"deep": [1, object()]}}], ids=["bad-doc"])
    with pytest.raises(ValueError, match=r"document 'bad-doc' .* key \['when'\]\['deep'\]\[1\]"):
        index.save(path)
    # issue 15 item 5: a non-str key is now refused when added (it used to fail at save)
    with pytest.raises(ValueError, match=r"metadatas\[0\] has a key of type int"):
        index.add_texts(["bad"], [{1: "int key"}], ids=["bad-doc"])  # type: ignore[dict-item]
    assert leftovers(path) == []
    assert observe(HybridIndex.load(path, DeterministicFakeEmbedding(size=16))) == before


def test_numpy_scalars_in_metadata_are_saved_as_numbers(tmp_path: Path) -> None:
    index = HybridIndex(DeterministicFakeEmbedding(size=8))
    index.add_texts(["x"], [{"n": np.int64(3), "f": np.float32(0.5)}], ids=["a"])
    index.save(tmp_path / "idx")
    loaded = HybridIndex.load(tmp_path / "idx", DeterministicFakeEmbedding(size=8))
    assert loaded.get_by_ids(["a"])[0].metadata == {"n": 3, "f": 0.5}
    assert loaded.search_keyword("x", 1, filter={"n": 3}) == (
        ["a"],
        loaded.search_keyword("x", 1)[1],
    )


# ---------------------------------------------------------------------------------- integrity


def test_foreign_directory_is_refused(tmp_path: Path) -> None:
    emb = DeterministicFakeEmbedding(size=8)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "data.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"not a langchain-fusion index: .* has no manifest.json"):
        HybridIndex.load(tmp_path / "foreign", emb)
    (tmp_path / "foreign" / "manifest.json").write_text('{"format": "chroma"}')
    with pytest.raises(ValueError, match=r"not a langchain-fusion index: .* format 'chroma'"):
        HybridIndex.load(tmp_path / "foreign", emb)
    (tmp_path / "foreign" / "manifest.json").write_text("not json")
    with pytest.raises(ValueError, match=r"not a langchain-fusion index: .* not valid JSON"):
        HybridIndex.load(tmp_path / "foreign", emb)
    with pytest.raises(FileNotFoundError, match="no index at"):
        HybridIndex.load(tmp_path / "missing", emb)


def test_other_format_version_is_refused_with_both_versions(tmp_path: Path) -> None:
    path = build().save(tmp_path / "idx")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 7
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        ValueError, match=r"format version 7.*reads format versions 1, 2 and 3; upgr"
    ):
        HybridIndex.load(path, DeterministicFakeEmbedding(size=16))


def test_format_version_1_is_read_and_verified_with_sha256(tmp_path: Path) -> None:
    # An index saved by an earlier release: format version 1, a SHA-256 for every file.
    path = build().save(tmp_path / "idx")
    expected = observe(HybridIndex.load(path, DeterministicFakeEmbedding(size=16)))
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 1
    for rel in manifest["files"]:
        data = (path / rel).read_bytes()
        manifest["files"][rel] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (path / "manifest.json").write_text(json.dumps(manifest))
    emb = DeterministicFakeEmbedding(size=16)
    assert observe(HybridIndex.load(path, emb)) == expected
    target = path / "docstore" / "texts.jsonl"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(CorruptIndexError, match=r"texts\.jsonl .* does not match its SHA-256"):
        HybridIndex.load(path, emb)
    # Saving again writes the current format.
    loaded = HybridIndex.load(path, emb, verify="size")
    resaved = json.loads((loaded.save(tmp_path / "new") / "manifest.json").read_text())
    assert resaved["format_version"] == 3
    assert all(set(entry) == {"size", "xxh3_128"} for entry in resaved["files"].values())


@pytest.mark.parametrize(
    "victim", ["docstore/texts.jsonl", "dense/vectors.npy", "bm25/post_docs.npy", "bm25/bm25.json"]
)
def test_tampered_file_is_detected_and_named(tmp_path: Path, victim: str) -> None:
    path = build().save(tmp_path / "idx")
    target = path / victim
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit, same size
    target.write_bytes(bytes(data))
    emb = DeterministicFakeEmbedding(size=16)
    with pytest.raises(CorruptIndexError, match=f"{victim} .* does not match its XXH3-128"):
        HybridIndex.load(path, emb)
    try:  # sizes only: trusts the content, or at worst says the index is damaged
        HybridIndex.load(path, emb, verify="size")
    except CorruptIndexError as exc:
        assert "is damaged" in str(exc) and "verify='full'" in str(exc)
    target.write_bytes(bytes(data[:-10]))
    for verify in ("full", "size"):
        with pytest.raises(CorruptIndexError, match=f"{victim} .* truncated"):
            HybridIndex.load(path, emb, verify=verify)
    target.unlink()
    with pytest.raises(CorruptIndexError, match=f"{victim} is missing"):
        HybridIndex.load(path, emb)
    with pytest.raises(ValueError, match="verify must be 'full' or 'size'"):
        HybridIndex.load(path, emb, verify="quick")  # type: ignore[arg-type]


def test_inconsistent_parts_are_refused(tmp_path: Path) -> None:
    path = build().save(tmp_path / "idx")
    other = build(n=39).save(tmp_path / "other")
    shutil.rmtree(path / "bm25")
    shutil.copytree(other / "bm25", path / "bm25")
    manifest = json.loads((path / "manifest.json").read_text())  # re-sign the swapped files
    for rel in list(manifest["files"]):
        data = (path / rel).read_bytes()
        manifest["files"][rel] = {"size": len(data), "xxh3_128": xxhash.xxh3_128(data).hexdigest()}
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CorruptIndexError, match="inconsistent: slot counts"):
        HybridIndex.load(path, DeterministicFakeEmbedding(size=16))


# ---------------------------------------------------------------------------------- embeddings


def test_embedding_must_match_the_saved_one(tmp_path: Path) -> None:
    path = build().save(tmp_path / "idx")
    with pytest.raises(ValueError, match="dimension mismatch: the index holds 16-dimensional"):
        HybridIndex.load(path, DeterministicFakeEmbedding(size=32))
    with pytest.raises(ValueError, match=r"built with DeterministicFakeEmbedding \(16-dim"):
        HybridIndex.load(path)

    class Named(Embeddings):
        def __init__(self, model: str) -> None:
            self.model = model

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [[1.0] * 4 for _ in texts]

        def embed_query(self, text: str) -> list[float]:
            return [1.0] * 4

    index = HybridIndex(Named("org/model-a"))
    index.add_texts(["x"])
    index.save(tmp_path / "named")
    with pytest.raises(ValueError, match=r"model mismatch: .*'org/model-a'.*'model-b'"):
        HybridIndex.load(tmp_path / "named", Named("model-b"))
    assert len(HybridIndex.load(tmp_path / "named", Named("model-a"))) == 1  # org prefix ignored


def test_an_undeclared_dimension_is_checked_at_the_first_query(tmp_path: Path) -> None:
    path = build().save(tmp_path / "idx")

    class Anonymous(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [[1.0] * 5 for _ in texts]

        def embed_query(self, text: str) -> list[float]:
            return [1.0] * 5

    with pytest.warns(UserWarning, match="make sure it is the same model"):
        loaded = HybridIndex.load(path, Anonymous())
    assert loaded.search_keyword("dogs", 1)[0]  # keyword side works without the model
    with pytest.raises(ValueError, match=r"expected 16, received 5"):
        loaded.similarity_search("dogs")


def test_loading_does_not_call_the_embedding(tmp_path: Path) -> None:
    path = build().save(tmp_path / "idx")
    emb = CountingEmbedding(size=16)
    loaded = HybridIndex.load(path, emb)
    loaded.keyword_search("cats")
    assert emb.calls == 0
    loaded.similarity_search("cats")
    assert emb.calls == 1


@pytest.mark.slow
def test_default_local_model_is_restored_lazily(tmp_path: Path) -> None:
    """An index built with the default model loads with embedding=None, without the model."""
    from langchain_fusion.dense.embeddings import LocalEmbeddings

    index = HybridIndex(LocalEmbeddings())
    index.add_texts(["The cat sat on the mat.", "Stock markets fell sharply."], ids=["c", "m"])
    index.save(tmp_path / "idx")
    script = textwrap.dedent(
        f"""
        import sys
        from langchain_fusion.index import HybridIndex
        index = HybridIndex.load({str(tmp_path / "idx")!r})
        assert "sentence_transformers" not in sys.modules, "model loaded at load time"
        assert index.search_keyword("cat", 1)[0] == ["c"]
        assert "sentence_transformers" not in sys.modules
        print(index.similarity_search("a kitten on a rug", k=1)[0].id)
        # the default engine is ONNX Runtime: torch is never needed once the export exists
        assert "onnxruntime" in sys.modules and "sentence_transformers" not in sys.modules
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "c"


# ---------------------------------------------------------------------------------- atomicity


def test_failed_save_leaves_previous_index_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "idx"
    build().save(path)
    emb = DeterministicFakeEmbedding(size=16)
    before = observe(HybridIndex.load(path, emb))
    bigger = build(n=80)

    def disk_full(self: DenseIndex, directory: Any) -> None:
        (Path(directory) / "vectors.npy").write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(DenseIndex, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        bigger.save(path)
    monkeypatch.undo()
    assert leftovers(path) == []
    assert observe(HybridIndex.load(path, emb)) == before
    # and a failure in the swap itself (between the two renames) is undone too
    real_rename = os.rename
    calls = {"n": 0}

    def failing_second_rename(src: Any, dst: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.EIO, "I/O error")
        real_rename(src, dst)

    monkeypatch.setattr(persistence, "_exchange", lambda a, b: False)
    monkeypatch.setattr(os, "rename", failing_second_rename)
    with pytest.raises(OSError, match="I/O error"):
        bigger.save(path)
    monkeypatch.undo()
    assert leftovers(path) == []
    assert observe(HybridIndex.load(path, emb)) == before


def test_save_refuses_to_replace_foreign_data(tmp_path: Path) -> None:
    index = build(n=5)
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(FileExistsError, match="not a langchain-fusion index, so it will not"):
        index.save(tmp_path / "photos")
    assert (tmp_path / "photos" / "holiday.jpg").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is not a directory"):
        index.save(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    index.save(tmp_path / "empty")  # an empty directory is fine
    with pytest.raises(FileExistsError, match="overwrite=True"):
        index.save(tmp_path / "empty", overwrite=False)
    index.save(tmp_path / "deep" / "er" / "idx")  # parents are created
    assert len(HybridIndex.load(tmp_path / "deep" / "er" / "idx", index.embeddings)) == 5


def test_two_rename_fallback_and_stale_siblings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(persistence, "_exchange", lambda a, b: False)
    path = tmp_path / "idx"
    build(n=5).save(path)
    (tmp_path / "idx.old-deadbeef").mkdir()  # left by an earlier crash
    build(n=7).save(path)
    assert leftovers(path) == []
    assert len(HybridIndex.load(path, DeterministicFakeEmbedding(size=16))) == 7


def test_load_recovers_from_the_crash_window(tmp_path: Path) -> None:
    """Between the two renames there is no ``path``, only ``path.old-*``: load renames it back."""
    path = tmp_path / "idx"
    build(n=9).save(path)
    expected = observe(HybridIndex.load(path, DeterministicFakeEmbedding(size=16)))
    os.rename(path, tmp_path / "idx.old-1a2b3c4d")
    (tmp_path / "idx.tmp-99999999").mkdir()  # a half-written new version (no manifest)
    with pytest.warns(RuntimeWarning, match="recovered the previous version"):
        loaded = HybridIndex.load(path, DeterministicFakeEmbedding(size=16))
    assert observe(loaded) == expected
    assert path.is_dir() and not (tmp_path / "idx.old-1a2b3c4d").exists()


def _can_drop_write_permission(directory: Path) -> list[str] | None:
    """The command prefix that makes ``directory`` really read-only for a child process."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    probe = subprocess.run(
        [
            setpriv,
            "--bounding-set=-dac_override,-dac_read_search,-fowner",
            "mkdir",
            str(directory / "p"),
        ],
        capture_output=True,
    )
    return (
        None
        if probe.returncode == 0
        else [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner"]
    )


@pytest.mark.slow  # starts a Python subprocess
def test_read_only_directory_gives_a_clear_error(tmp_path: Path) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    build(n=5).save(parent / "idx")
    os.chmod(parent, 0o555)
    try:
        prefix = _can_drop_write_permission(parent)
        if prefix is None:
            pytest.skip("cannot make a directory read-only for this user")
        script = textwrap.dedent(
            f"""
            from langchain_core.embeddings import DeterministicFakeEmbedding
            from langchain_fusion.index import HybridIndex
            index = HybridIndex.from_texts(["new"], DeterministicFakeEmbedding(size=16))
            try:
                index.save({str(parent / "idx")!r})
            except PermissionError as exc:
                print("ERROR", exc)
            """
        )
        out = subprocess.run(
            [*prefix, sys.executable, "-c", script],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert out.returncode == 0, out.stderr
        assert "ERROR" in out.stdout and "cannot create a directory in" in out.stdout
        assert "the parent directory must be writable" in out.stdout
    finally:
        os.chmod(parent, 0o755)
    assert len(HybridIndex.load(parent / "idx", DeterministicFakeEmbedding(size=16))) == 5
    assert leftovers(parent / "idx") == []


_SAVER = """
import sys
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_fusion import persistence
from langchain_fusion.index import HybridIndex

source, path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
index = HybridIndex.load(source, DeterministicFakeEmbedding(size=64), verify="size")
if mode == "window":  # die exactly between the two renames of the fallback swap
    import os, signal
    persistence._exchange = lambda a, b: False
    real_rename = os.rename
    calls = []
    def rename(src, dst):
        calls.append(src)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        real_rename(src, dst)
    persistence.os.rename = rename
print("saving", flush=True)
while True:
    index.save(path)
"""


def _big_index(directory: Path) -> Path:
    """A 20,000-document index saved once, for the subprocesses to re-save (slow to write)."""
    source = directory / "source"
    texts = [f"version two document {i} " + "filler words " * 20 for i in range(20000)]
    emb = DeterministicFakeEmbedding(size=64)
    HybridIndex.from_texts(texts, emb, ids=[f"v2-{i}" for i in range(20000)]).save(source)
    return source


def _run_saver(source: Path, path: Path, mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SAVER, str(source), str(path), mode],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "saving", proc.stderr.read() if proc.stderr else ""
    return proc


@pytest.mark.slow
def test_sigkill_during_save_never_loses_the_index(tmp_path: Path) -> None:
    path = tmp_path / "idx"
    emb = DeterministicFakeEmbedding(size=64)
    old = HybridIndex.from_texts(["version one text"], emb, ids=["v1"])
    old.save(path)
    source = _big_index(tmp_path)
    outcomes = set()
    for delay in [0.0, 0.15, 0.4, 0.9]:
        proc = _run_saver(source, path, "loop")
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a recovery is fine here
            loaded = HybridIndex.load(path, emb)
        assert len(loaded) in (1, 20000)
        outcomes.add(len(loaded))
        first = loaded.ids[0]
        assert loaded.documents([first])[0].id == first
        assert loaded.search_keyword("version", 1)[0]
    assert outcomes <= {1, 20000}


@pytest.mark.slow
def test_sigkill_between_the_two_renames_is_recovered(tmp_path: Path) -> None:
    path = tmp_path / "idx"
    emb = DeterministicFakeEmbedding(size=64)
    HybridIndex.from_texts(["version one text"], emb, ids=["v1"]).save(path)
    proc = _run_saver(_big_index(tmp_path), path, "window")
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert not path.exists()  # the crash window really happened
    assert any(name.startswith("idx.old-") for name in leftovers(path))
    with pytest.warns(RuntimeWarning, match="recovered"):
        loaded = HybridIndex.load(path, emb)
    assert loaded.ids == ["v1"]
    # the next save cleans up and works normally
    HybridIndex.from_texts(["version three"], emb, ids=["v3"]).save(path)
    assert not any(name.startswith("idx.old-") for name in leftovers(path))
    assert HybridIndex.load(path, emb).ids == ["v3"]


def test_documents_keep_ids_after_load(tmp_path: Path) -> None:
    index = HybridIndex.from_documents(
        [Document("alpha", id="a", metadata={"k": 1})], DeterministicFakeEmbedding(size=8)
    )
    index.save(tmp_path / "idx")
    loaded = HybridIndex.load(tmp_path / "idx", DeterministicFakeEmbedding(size=8))
    assert loaded.documents(["a"]) == [Document("alpha", id="a", metadata={"k": 1})]


@pytest.mark.parametrize("mmap", [True, False])
def test_docstore_round_trip_with_odd_text(tmp_path: Path, mmap: bool) -> None:
    from langchain_fusion.docstore import DocStore

    store = DocStore()
    texts = ["plain", "lone \ud800 surrogate", 'new\nline and "quotes"', "", "naïve ☕"]
    store.append([f"k{i}" for i in range(5)], texts, [None, {"a": [1, 2]}, None, {}, {"b": None}])
    store.remove([3])
    store.save(tmp_path)
    loaded = DocStore.load(tmp_path, mmap=mmap)
    assert [loaded.text(i) for i in (0, 1, 2, 4)] == [texts[i] for i in (0, 1, 2, 4)]
    assert loaded.metadata(1) == {"a": [1, 2]} and loaded.metadata(4) == {"b": None}
    assert loaded.live_ids() == ["k0", "k1", "k2", "k4"] and "k3" not in loaded
    loaded.append(["k5"], ["after load"], [{"c": 1}])  # appends go to memory, files untouched
    loaded.remove([0])
    assert loaded.live_ids() == ["k1", "k2", "k4", "k5"]
    assert loaded.match(lambda m: "c" in m).tolist() == [False] * 5 + [True]
    again_dir = tmp_path / "again"
    again_dir.mkdir()
    loaded.save(again_dir)  # frozen prefix copied byte for byte, tail encoded
    again = DocStore.load(again_dir, mmap=mmap)
    assert [again.text(i) for i in range(6)] == ["", texts[1], texts[2], "", texts[4], "after load"]
    assert again.live_ids() == ["k1", "k2", "k4", "k5"]
    assert b"plain" not in (again_dir / "texts.jsonl").read_bytes()  # deleted text is gone
    assert b"k0" not in (again_dir / "ids.jsonl").read_bytes()


def test_loading_with_another_embedding_class_of_unknown_model_warns(tmp_path: Path) -> None:
    from tests.fakes import BagOfWordsEmbedding

    index = HybridIndex.from_texts(["a b"], BagOfWordsEmbedding(size=8))
    index.save(tmp_path / "i")
    with pytest.warns(UserWarning, match="make sure it is the same model"):
        HybridIndex.load(tmp_path / "i", DeterministicFakeEmbedding(size=8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HybridIndex.load(tmp_path / "i", BagOfWordsEmbedding(size=8))  # same class: quiet


def test_format_version_2_keeps_its_unnormalized_tokenizer(tmp_path: Path) -> None:
    # Saved before the tokenizer recorded its Unicode normalization: no key, format version 2.
    path = build().save(tmp_path / "idx")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["parameters"]["tokenizer"].pop("unicode_normalization") == "NFKC"
    bm25_meta = json.loads((path / "bm25" / "bm25.json").read_text())
    del bm25_meta["tokenizer"]["unicode_normalization"]
    data = json.dumps(bm25_meta).encode()
    (path / "bm25" / "bm25.json").write_bytes(data)
    entry = {"size": len(data), "xxh3_128": xxhash.xxh3_128(data).hexdigest()}
    manifest["files"]["bm25/bm25.json"] = entry
    manifest["format_version"] = 2
    (path / "manifest.json").write_text(json.dumps(manifest))
    loaded = HybridIndex.load(path, DeterministicFakeEmbedding(size=16))
    assert loaded.tokenizer.unicode_normalization is None
    assert loaded.tokenizer("Mu\u0308ller") == ["mu", "ller"]  # as its documents were tokenized
    assert (
        HybridIndex.load(
            loaded.save(tmp_path / "new"), DeterministicFakeEmbedding(size=16)
        ).tokenizer
        == loaded.tokenizer
    )  # and saving again keeps it


def test_broken_json_under_size_only_verification_is_a_corrupt_index(tmp_path: Path) -> None:
    path = build().save(tmp_path / "idx")
    target = path / "bm25" / "bm25.json"
    data = target.read_bytes()
    target.write_bytes(b"{" * len(data))  # same size, not JSON
    with pytest.raises(CorruptIndexError, match=r"is damaged .*verify='full'"):
        HybridIndex.load(path, DeterministicFakeEmbedding(size=16), verify="size")
