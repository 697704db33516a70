"""Unit tests of HybridIndex: ids, upsert, delete, filters, searches, atomicity, threads."""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from langchain_fusion.index import HybridIndex
from langchain_fusion.lexical.bm25 import BM25Index

DIM = 32


class WordHashEmbedding(Embeddings):
    """Hashing bag-of-words: texts sharing words get similar vectors (fast, deterministic)."""

    def __init__(self, size: int = DIM) -> None:
        self.size = size
        self.calls = 0

    def _vec(self, text: str) -> list[float]:
        v = np.zeros(self.size)
        for word in re.findall(r"\w+", text.lower()):
            h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            v[h % self.size] += 1.0 if (h >> 32) & 1 else -1.0
        if not v.any():
            v[0] = 1.0
        return [float(x) for x in v]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)


class BrokenEmbedding(WordHashEmbedding):
    """Returns a bad vector for texts containing ``bad`` (NaN, inf, zeros or wrong dim)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        out = super().embed_documents(texts)
        for i, text in enumerate(texts):
            if "bad" in text:
                if self.kind == "nan":
                    out[i][3] = float("nan")
                elif self.kind == "inf":
                    out[i][0] = float("inf")
                elif self.kind == "zero":
                    out[i] = [0.0] * self.size
                elif self.kind == "dim":
                    out[i] = out[i] + [1.0]
                elif self.kind == "count":
                    del out[i]
                    break
        return out


TOPICS = ["solar", "wind", "hydro", "nuclear", "coal"]


def corpus(n: int = 60) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    texts = [f"{TOPICS[i % 5]} energy report number{i} grid storage" for i in range(n)]
    metas = [{"topic": TOPICS[i % 5], "page": i, "even": i % 2 == 0} for i in range(n)]
    ids = [f"d{i}" for i in range(n)]
    return texts, metas, ids


@pytest.fixture
def index() -> HybridIndex:
    texts, metas, ids = corpus()
    return HybridIndex.from_texts(texts, WordHashEmbedding(), metadatas=metas, ids=ids)


def snapshot(index: HybridIndex) -> dict[str, Any]:
    """Everything observable through searches, for 'nothing changed' assertions."""
    q = index.embed_query("solar energy grid")
    out: dict[str, Any] = {
        "ids": index.ids,
        "kw": index.search_keyword("solar grid number3", 10),
        "dense": index.search_dense(q, 10),
        "docs": index.get_by_ids(index.ids),
        "len": len(index),
    }
    return {k: (v[0], v[1].tolist()) if isinstance(v, tuple) else v for k, v in out.items()}


# ---------------------------------------------------------------------------------- construction


def test_constructor_validates_parameters() -> None:
    with pytest.raises(TypeError, match="embedding must be a LangChain Embeddings"):
        HybridIndex("not an embedding")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind"):
        HybridIndex(WordHashEmbedding(), dense_kind="annoy")
    with pytest.raises(ValueError, match="b"):
        HybridIndex(WordHashEmbedding(), b=1.5)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        HybridIndex(WordHashEmbedding(), batch_size=0)


def test_default_embedding_is_local_and_lazy() -> None:
    from langchain_fusion.dense import embeddings as embeddings_module

    loaded_before = dict(embeddings_module._MODEL_CACHE)
    index = HybridIndex()
    assert type(index.embeddings).__name__ == "LocalEmbeddings"
    assert index.keyword_search("anything") == []  # no model needed
    assert "all-MiniLM-L6-v2" in repr(index)
    assert loaded_before == embeddings_module._MODEL_CACHE  # the model was not loaded


def test_empty_index_searches_return_nothing() -> None:
    index = HybridIndex(WordHashEmbedding())
    assert len(index) == 0 and index.ids == [] and index.dim is None
    assert index.similarity_search("x") == []
    assert index.keyword_search("x") == []
    kw_ids, kw_scores = index.search_keyword("x", 3)
    assert kw_ids == [] and kw_scores.shape == (0,)
    ids, scores = index.search_dense(np.ones(DIM), 3)
    assert ids == [] and scores.shape == (0,)
    assert index.max_marginal_relevance_search("x") == []
    assert index.delete(["nope"]) is False
    assert index.add_texts([]) == []


# ---------------------------------------------------------------------------------- adding, ids


def test_add_texts_ids_and_generated_uuids() -> None:
    index = HybridIndex(WordHashEmbedding())
    ids = index.add_texts(["a b", "c d", "e f"], ids=["x", None, ""])
    assert ids[0] == "x"
    assert all(re.fullmatch(r"[0-9a-f-]{36}", i) for i in ids[1:])
    assert index.ids == ids and len(index) == 3
    assert all(i in index for i in ids) and "y" not in index and 3 not in index


def test_add_documents_honours_document_id_and_ids_kwarg() -> None:
    index = HybridIndex(WordHashEmbedding())
    docs = [Document("alpha", id="A", metadata={"k": 1}), Document("beta")]
    ids = index.add_documents(docs)
    assert ids[0] == "A" and len(ids[1]) == 36
    assert docs[1].id is None and docs[0].metadata == {"k": 1}  # inputs not mutated
    # explicit ids win over Document.id
    assert index.add_documents([Document("gamma", id="G")], ids=["override"]) == ["override"]
    assert "G" not in index and "override" in index
    with pytest.raises(TypeError, match=r"documents\[1\] must be a langchain Document"):
        index.add_documents([Document("x"), "y"])  # type: ignore[list-item]


def test_from_documents_keeps_ids_and_routes_kwargs() -> None:
    docs = [Document("alpha", id="A"), Document("beta", id="B")]
    index = HybridIndex.from_documents(docs, WordHashEmbedding(), k1=1.2, batch_size=1)
    assert index.ids == ["A", "B"]
    assert index._bm25.k1 == 1.2  # constructor kwarg
    assert index.get_by_ids(["B"])[0].page_content == "beta"


def test_batches_are_embedded_separately() -> None:
    emb = WordHashEmbedding()
    index = HybridIndex(emb, batch_size=4)
    index.add_texts([f"t{i}" for i in range(10)])
    assert emb.calls == 3
    index.add_texts(["x", "y"], batch_size=1, show_progress=True)
    assert emb.calls == 5 and len(index) == 12


def test_metadata_is_copied_in_and_out(index: HybridIndex) -> None:
    meta = {"tags": ["a"], "n": 1}
    index.add_texts(["copied"], [meta], ids=["c"])
    meta["n"] = 2
    doc = index.get_by_ids(["c"])[0]
    assert doc.metadata == {"tags": ["a"], "n": 1}
    doc.metadata["n"] = 99
    assert index.documents(["c"])[0].metadata["n"] == 1


def test_input_validation_names_the_problem(index: HybridIndex) -> None:
    before = snapshot(index)
    with pytest.raises(TypeError, match="wrap a single text in a list"):
        index.add_texts("just a string")
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str, got int"):
        index.add_texts(["ok", 5])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="metadatas has 1 entries but texts has 2"):
        index.add_texts(["a", "b"], [{}])
    with pytest.raises(TypeError, match=r"metadatas\[0\] must be a dict or None, got list"):
        index.add_texts(["a"], [["x"]])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="ids has 1 entries but texts has 2"):
        index.add_texts(["a", "b"], ids=["x"])
    with pytest.raises(TypeError, match=r"ids\[0\] must be a str or None, got int 7"):
        index.add_texts(["a"], ids=[7])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"distinct within one call, got duplicates \['x'\]"):
        index.add_texts(["a", "b", "c"], ids=["x", "y", "x"])
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['colour'\\]"):
        index.add_texts(["a"], colour="red")
    with pytest.raises(TypeError, match="upsert must be True or False"):
        index.add_texts(["a"], upsert="yes")  # type: ignore[arg-type]
    assert snapshot(index) == before


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("nan", r"returned NaN or infinite values for texts\[2\]"),
        ("inf", r"returned NaN or infinite values for texts\[2\]"),
        ("zero", r"all-zero vector for texts\[2\]"),
        ("dim", r"dimension 33 for texts\[2\].* \(expected 32, received 33\)"),
        ("count", "returned 2 vectors for 3 texts"),
    ],
)
def test_bad_embeddings_are_rejected_and_change_nothing(kind: str, message: str) -> None:
    index = HybridIndex(BrokenEmbedding(kind))
    index.add_texts(["good one", "good two"], ids=["g1", "g2"])
    before = snapshot(index)
    with pytest.raises(ValueError, match=message) as info:
        index.add_texts(["fine", "also fine", "bad text"], ids=["n1", "n2", "g1"])
    if kind != "count" and kind != "dim":
        assert "BrokenEmbedding" in str(info.value)
    assert snapshot(index) == before
    assert "n1" not in index


def test_wrong_dimension_against_existing_index() -> None:
    index = HybridIndex(DeterministicFakeEmbedding(size=8))
    index.add_texts(["a"])
    index._embedding = DeterministicFakeEmbedding(size=6)
    with pytest.raises(ValueError, match=r"expected 8, received 6"):
        index.add_texts(["b"])
    with pytest.raises(ValueError, match=r"expected 8, received 6"):
        index.similarity_search("b")
    assert len(index) == 1


# ---------------------------------------------------------------------------------- upsert


def test_upsert_replaces_in_both_engines(index: HybridIndex) -> None:
    assert index.search_keyword("number7", 5)[0] == ["d7"]
    index.add_texts(["completely different zebra words"], [{"topic": "zoo"}], ids=["d7"])
    assert len(index) == 60
    assert index.search_keyword("number7", 5)[0] == []
    assert index.search_keyword("zebra", 5)[0] == ["d7"]
    top_ids, top_scores = index.search_dense(
        index.embed_query("completely different zebra words"), 1
    )
    assert top_ids == ["d7"] and top_scores[0] == pytest.approx(1.0, abs=1e-6)
    assert index.get_by_ids(["d7"])[0] == Document(
        "completely different zebra words", metadata={"topic": "zoo"}, id="d7"
    )
    assert index.ids[-1] == "d7" and index.n_deleted == 1
    # BM25 statistics equal a fresh build over the live documents
    fresh = BM25Index()
    fresh.add([index.get_by_ids([i])[0].page_content for i in index.ids])
    assert fresh.avg_doc_len == pytest.approx(index._bm25.avg_doc_len)
    assert index._bm25.doc_freq("solar") == fresh.doc_freq("solar")


def test_upsert_false_refuses_existing_ids_and_changes_nothing(index: HybridIndex) -> None:
    before = snapshot(index)
    with pytest.raises(ValueError, match=r"ids already in the index: \['d3', 'd5'\]") as info:
        index.add_texts(["new", "x", "y"], ids=["fresh", "d3", "d5"], upsert=False)
    assert "pass upsert=True" in str(info.value)
    assert snapshot(index) == before and "fresh" not in index
    assert index.add_texts(["new"], ids=["fresh"], upsert=False) == ["fresh"]


@pytest.mark.parametrize("failures", [1, 2])  # 2: the re-alignment after the failure fails too
def test_failure_midway_leaves_index_as_it_was(
    index: HybridIndex, monkeypatch: pytest.MonkeyPatch, failures: int
) -> None:
    before = snapshot(index)
    calls = {"n": 0}
    original = BM25Index.add

    def failing_add(self: BM25Index, texts: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise MemoryError("simulated")
        return original(self, texts, **kwargs)

    monkeypatch.setattr(BM25Index, "add", failing_add)
    with pytest.raises(MemoryError):
        index.add_texts(["solar flare", "brand new"], ids=["d1", "new"])  # upsert + add
    monkeypatch.setattr(BM25Index, "add", original)
    assert snapshot(index) == before
    # the engines stayed aligned: later adds and searches are right
    index.add_texts(["unique marmalade text"], ids=["m"])
    assert index.search_keyword("marmalade", 3)[0] == ["m"]
    assert index.search_dense(index.embed_query("unique marmalade text"), 1)[0] == ["m"]
    assert index._docs.n_slots == index._bm25.n_slots == index._dense.n_slots  # type: ignore[union-attr]


def test_failure_in_docstore_rolls_back(
    index: HybridIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(index)

    def failing_append(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("simulated")

    monkeypatch.setattr(index._docs, "append", failing_append)
    with pytest.raises(RuntimeError):
        index.add_texts(["solar flare"], ids=["d2"])
    monkeypatch.undo()
    assert snapshot(index) == before
    index.add_texts(["solar flare"], ids=["d2"])
    assert index.search_keyword("flare", 1)[0] == ["d2"]


# ---------------------------------------------------------------------------------- delete, get


def test_delete_by_ids_and_filter(index: HybridIndex) -> None:
    assert index.delete(["d0", "missing"]) is True
    assert "d0" not in index and len(index) == 59
    assert index.delete(["missing"]) is False
    assert index.delete(filter={"topic": "coal"}) is True
    assert len(index) == 47
    assert all(d.metadata["topic"] != "coal" for d in index.get_by_ids(index.ids))
    assert index.search_keyword("coal", 50)[0] == []
    assert index.delete(filter=lambda m: m["page"] < 10) is True
    assert min(d.metadata["page"] for d in index.get_by_ids(index.ids)) == 10
    with pytest.raises(ValueError, match="filter=\\{\\}"):
        index.delete()
    with pytest.raises(TypeError, match="single str"):
        index.delete("d1")
    assert index.delete(filter={}) is True and len(index) == 0
    assert index.similarity_search("solar") == []


def test_get_by_ids_and_documents(index: HybridIndex) -> None:
    docs = index.get_by_ids(["d2", "nope", "d1", "d2"])
    assert [d.id for d in docs] == ["d2", "d1", "d2"]
    assert docs[0].page_content.startswith("hydro") and docs[0].metadata["page"] == 2
    assert index.documents(["d1"])[0].id == "d1"
    with pytest.raises(KeyError, match="'nope' is not in the index"):
        index.documents(["d1", "nope"])
    index.delete(["d1"])
    assert index.get_by_ids(["d1"]) == []


async def test_async_methods(index: HybridIndex) -> None:
    assert await index.aadd_texts(["async text here"], ids=["as"]) == ["as"]
    assert (await index.aget_by_ids(["as"]))[0].page_content == "async text here"
    docs = await index.asimilarity_search("async text here", k=1)
    assert docs[0].id == "as"
    await index.adelete(["as"])
    assert "as" not in index
    ids = await index.aadd_documents([Document("doc async", id="ad")])
    assert ids == ["ad"]
    with pytest.raises(ValueError, match="already in the index"):
        await index.aadd_texts(["x"], ids=["ad"], upsert=False)


# ---------------------------------------------------------------------------------- searches


def test_similarity_scores_are_exact_cosines(index: HybridIndex) -> None:
    emb = WordHashEmbedding()
    query = "wind energy grid"
    results = index.similarity_search_with_score(query, k=60)
    assert len(results) == 60
    q = np.asarray(emb.embed_query(query))
    q /= np.linalg.norm(q)
    for doc, score in results:
        v = np.asarray(emb.embed_query(doc.page_content))
        assert score == pytest.approx(float(q @ v / np.linalg.norm(v)), abs=1e-5)
    scores = [s for _, s in results]
    assert scores == sorted(scores, reverse=True)
    relevance = index.similarity_search_with_relevance_scores(query, k=5)
    assert all(0.0 <= r <= 1.0 for _, r in relevance)
    assert relevance[0][1] == pytest.approx((1 + results[0][1]) / 2)


def test_similarity_search_by_vector_matches_query(index: HybridIndex) -> None:
    vector = WordHashEmbedding().embed_query("hydro storage")
    by_vector = index.similarity_search_by_vector(vector, k=5)
    assert by_vector == index.similarity_search("hydro storage", k=5)


def test_search_kwargs_validation(index: HybridIndex) -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['filters'\]"):
        index.similarity_search("x", filters={"topic": "coal"})
    with pytest.raises(ValueError, match="k must be an int >= 1, got 0"):
        index.similarity_search("x", k=0)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        index.search_keyword("x", -1)
    with pytest.raises(TypeError, match="query must be a str"):
        index.similarity_search(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown operator '\\$regex'"):
        index.similarity_search("x", filter={"topic": {"$regex": "s.*"}})
    with pytest.raises(ValueError, match="query_vector has dimension 3"):
        index.search_dense([1.0, 2.0, 3.0], 2)
    with pytest.raises(ValueError, match="NaN"):
        index.search_dense([float("nan")] * DIM, 2)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_filter_is_applied_before_the_top_k_cut(kind: str) -> None:
    texts = [f"common words shared by all number{i}" for i in range(300)]
    metas = [{"group": "rare" if i % 50 == 7 else "bulk", "i": i} for i in range(300)]
    index = HybridIndex.from_texts(
        texts,
        WordHashEmbedding(),
        metadatas=metas,
        dense_kind=kind,
        ids=[str(i) for i in range(300)],
    )
    rare = {"7", "57", "107", "157", "207", "257"}
    # unfiltered top-k is dominated by bulk documents...
    query = "common words shared by all number3"
    # ...but a filtered search returns k matching documents
    for filt in ({"group": "rare"}, lambda m: m["group"] == "rare"):
        docs = index.similarity_search(query, k=5, filter=filt)
        assert len(docs) == 5 and {d.id for d in docs} <= rare
        ids, _ = index.search_keyword("common", 6, filter=filt)
        assert set(ids) == rare
        kw = index.keyword_search("common words", k=10, filter=filt)
        assert {d.id for d, _ in kw} == rare
        mmr = index.max_marginal_relevance_search(query, k=4, fetch_k=10, filter=filt)
        assert len(mmr) == 4 and {d.id for d in mmr} <= rare
    assert index.similarity_search(query, k=5, filter={"group": "none"}) == []
    assert index.search_keyword("common", 5, filter={"i": {"$gte": 298}})[0] == ["298", "299"]


def test_filter_cache_is_invalidated_by_writes(index: HybridIndex) -> None:
    filt = {"topic": "geothermal"}
    assert index.similarity_search("geothermal", k=3, filter=filt) == []
    index.add_texts(["geothermal heat"], [{"topic": "geothermal"}], ids=["g"])
    assert [d.id for d in index.similarity_search("geothermal", k=3, filter=filt)] == ["g"]
    index.add_texts(["geothermal heat v2"], [{"topic": "other"}], ids=["g"])
    assert index.similarity_search("geothermal", k=3, filter=filt) == []
    index.add_texts(["geothermal heat v3"], [{"topic": "geothermal"}], ids=["g"])
    index.delete(["g"])
    assert index.search_keyword("geothermal", 3, filter=filt)[0] == []


def test_keyword_search_matches_a_separate_bm25_index(index: HybridIndex) -> None:
    texts, _, ids = corpus()
    bm25 = BM25Index()
    bm25.add(texts)
    slots, scores = bm25.search("solar storage number12", 10)
    got_ids, got_scores = index.search_keyword("solar storage number12", 10)
    assert got_ids == [ids[s] for s in slots.tolist()]
    np.testing.assert_allclose(got_scores, scores)
    pairs = index.keyword_search("solar storage number12", k=10)
    assert [d.id for d, _ in pairs] == got_ids
    assert index.known_terms("solar power from mars") == ["solar"]


def test_score_functions_agree_with_search(index: HybridIndex) -> None:
    q = index.embed_query("nuclear grid storage")
    ids, scores = index.search_dense(q, 8)
    np.testing.assert_allclose(index.score_dense(q, ids), scores, atol=1e-6)
    rescored = index.score_dense(q, ["nope", ids[0]])
    assert np.isnan(rescored[0]) and rescored[1] == pytest.approx(scores[0], abs=1e-6)
    kw_ids, kw_scores = index.search_keyword("nuclear number3", 5)
    np.testing.assert_allclose(index.score_keyword("nuclear number3", kw_ids), kw_scores)
    other = index.score_keyword("nuclear number3", ["d1", "gone"])
    assert other[0] == 0.0 and np.isnan(other[1])
    many = index.search_dense_many(np.stack([q, index.embed_query("coal")]), 4)
    assert many[0][0] == ids[:4]
    assert many[1][0] == index.search_dense(index.embed_query("coal"), 4)[0]


def test_mmr_diversifies_with_stored_vectors() -> None:
    texts = ["apple pie recipe"] * 3 + ["apple orchard tour", "pie crust tips"]
    index = HybridIndex.from_texts(texts, WordHashEmbedding(), ids=["a1", "a2", "a3", "o", "p"])
    similar = index.similarity_search("apple pie recipe", k=3)
    assert {d.id for d in similar} == {"a1", "a2", "a3"}
    diverse = index.max_marginal_relevance_search(
        "apple pie recipe", k=3, fetch_k=5, lambda_mult=0.3
    )
    assert len({d.page_content for d in diverse}) == 3
    pure = index.max_marginal_relevance_search("apple pie recipe", k=2, lambda_mult=1.0)
    assert pure[0].page_content == "apple pie recipe"
    with pytest.raises(ValueError, match="lambda_mult must be in \\[0, 1\\], got 2"):
        index.max_marginal_relevance_search("x", lambda_mult=2)


def test_as_retriever_with_filter_and_threshold(index: HybridIndex) -> None:
    retriever = index.as_retriever(search_kwargs={"k": 3, "filter": {"topic": "wind"}})
    docs = retriever.invoke("energy")
    assert len(docs) == 3 and all(d.metadata["topic"] == "wind" for d in docs)
    query = "coal energy report number4 grid storage"
    scored = index.similarity_search_with_relevance_scores(query, k=60, score_threshold=0.9)
    assert scored[0][0].id == "d4" and all(r >= 0.9 for _, r in scored)
    assert len(scored) < 60
    thresholded = index.as_retriever(
        search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.9, "k": 60}
    )
    assert [d.id for d in thresholded.invoke(query)] == [d.id for d, _ in scored]


def test_compact_keeps_results(index: HybridIndex) -> None:
    index.delete([f"d{i}" for i in range(0, 60, 3)])
    index.add_texts(["solar v2 of d1"], ids=["d1"])
    before = snapshot(index)
    assert index.compact() == 21
    assert index.n_deleted == 0 and index._docs.n_slots == 40
    assert snapshot(index) == before
    assert index.compact() == 0


# ---------------------------------------------------------------------------------- threads


def test_concurrent_readers_never_see_half_applied_adds() -> None:
    batch = 25
    index = HybridIndex(WordHashEmbedding(), dense_kind="flat")
    index.add_texts(
        [f"common doc w{i} version0" for i in range(batch)],
        [{"writer": i, "version": 0} for i in range(batch)],
        ids=[f"w{i}" for i in range(batch)],
    )
    stop = threading.Event()
    errors: list[BaseException] = []
    observed: list[int] = []

    def writer() -> None:
        try:
            for round_ in range(1, 40):
                start = round_ * batch
                index.add_texts(
                    [f"common doc w{i} version0" for i in range(start, start + batch)],
                    [{"writer": i, "version": 0} for i in range(start, start + batch)],
                    ids=[f"w{i}" for i in range(start, start + batch)],
                )
                # upsert a whole earlier batch to a new version
                old = range((round_ - 1) * batch, round_ * batch)
                index.add_texts(
                    [f"common doc w{i} version{round_}" for i in old],
                    [{"writer": i, "version": round_} for i in old],
                    ids=[f"w{i}" for i in old],
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            stop.set()

    def reader() -> None:
        try:
            while not stop.is_set():
                ids, _ = index.search_keyword("common", 100_000)
                observed.append(len(ids))
                assert len(ids) % batch == 0, len(ids)  # whole batches only
                assert len(set(ids)) == len(ids)
                for doc in index.documents(ids[:50]):
                    m = re.fullmatch(r"common doc (w\d+) version(\d+)", doc.page_content)
                    assert m and m.group(1) == doc.id
                    assert int(m.group(2)) == doc.metadata["version"]
                for doc, _ in index.similarity_search_with_score("common doc", k=20):
                    assert doc.page_content.startswith(f"common doc {doc.id} ")
                filtered = index.search_keyword("common", 100_000, filter={"version": 0})[0]
                assert len(filtered) % batch == 0
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[0]
    assert len(index) == 40 * batch
    assert len(set(observed)) > 1  # readers really ran during the writes


def test_read_lock_is_reentrant_and_upgrade_is_refused(index: HybridIndex) -> None:
    calls = []

    def predicate(meta: Any) -> bool:
        calls.append(len(index))  # nested read inside a search: must not deadlock
        return bool(meta["even"])

    assert len(index.similarity_search("solar", k=3, filter=predicate)) == 3

    def writing_predicate(meta: Any) -> bool:
        index.delete(["d1"])
        return True

    with pytest.raises(RuntimeError, match="cannot modify the index while this thread is reading"):
        index.similarity_search("solar", filter=writing_predicate)
    assert "d1" in index


def test_add_embeddings_checks_float_arrays_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    import langchain_fusion.index as index_module

    monkeypatch.setattr(index_module, "_CHECK_ROWS", 2)
    index = HybridIndex(DeterministicFakeEmbedding(size=3))
    texts = [f"text {i}" for i in range(7)]
    vectors = np.arange(1, 22, dtype=np.float32).reshape(7, 3)
    vectors[5, 0] = np.inf
    vectors[1] = 0.0
    with pytest.raises(ValueError, match=r"NaN or infinite values for texts\[5\]"):
        index.add_embeddings(texts, vectors)
    vectors[5, 0] = 1.0
    with pytest.raises(ValueError, match=r"all-zero vector for texts\[1\]"):
        index.add_embeddings(texts, vectors.astype(np.float64))
    with pytest.raises(ValueError, match="returned 6 vectors for 7 texts"):
        index.add_embeddings(texts, np.ones((6, 3)))
    assert len(index) == 0 and index.dim is None  # nothing was added
    vectors[1] = 2.0
    before = vectors.copy()
    ids = index.add_embeddings(texts, vectors, ids=[str(i) for i in range(7)])
    assert np.array_equal(vectors, before)  # the caller's array is not modified
    assert index.search_dense(vectors[4], 1)[0] == [ids[4]]
    assert index.search_keyword("text", 7)[0] == ids  # both sides got every document
    with pytest.raises(ValueError, match=r"vector of dimension 2 for texts\[0\]"):
        index.add_embeddings(["x", "y"], np.ones((2, 2)))
    assert len(index) == 7


def test_stored_metadata_shares_nothing_with_callers() -> None:
    from tests.fakes import BagOfWordsEmbedding

    given = Document("battery tags", id="a", metadata={"tags": ["x"], "info": {"v": 1}})
    index = HybridIndex(BagOfWordsEmbedding())
    index.add_documents([given])
    given.metadata["tags"].append("edited after indexing")
    returned = index.get_by_ids(["a"])[0]
    returned.metadata["info"]["v"] = 2
    index.similarity_search("battery", k=1)[0].metadata["tags"].append("edited result")
    assert index.get_by_ids(["a"])[0].metadata == {"tags": ["x"], "info": {"v": 1}}


def test_a_huge_k_returns_every_document_without_allocating_k() -> None:
    index = HybridIndex.from_texts(["a b", "b c"], DeterministicFakeEmbedding(size=8))
    assert len(index.similarity_search("b", k=10**12)) == 2


def test_pickle_and_deepcopy_say_how_to_persist() -> None:
    import copy
    import pickle

    from langchain_fusion import FusionRetriever

    index = HybridIndex.from_texts(["a b"], DeterministicFakeEmbedding(size=8))
    for attempt in (
        lambda: pickle.dumps(index),
        lambda: copy.deepcopy(index),
        lambda: pickle.dumps(FusionRetriever.from_index(index)),
    ):
        with pytest.raises(TypeError, match=r"index\.save\(path\).*HybridIndex\.load\(path\)"):
            attempt()
