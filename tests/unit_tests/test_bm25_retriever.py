from __future__ import annotations

import copy
import inspect
import json
import pickle
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests
from pydantic import ValidationError

from langchain_fusion.bm25_retriever import BM25Retriever, content_id
from langchain_fusion.lexical import BM25Index, Tokenizer

FOX_DOCS = [
    Document("The quick brown fox jumps over the lazy dog.", metadata={"n": 0}),
    Document("A fox is a small omnivorous mammal.", metadata={"n": 1}),
    Document("Foxes live on every continent except Antarctica.", metadata={"n": 2}),
    Document("The red fox is the largest of the true foxes.", metadata={"n": 3}),
    Document("Dogs are domesticated descendants of wolves.", metadata={"n": 4}),
    Document("Cats sleep for most of the day.", metadata={"n": 5}),
]


class TestBM25RetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[BM25Retriever]:
        return BM25Retriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"docs": FOX_DOCS, "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return "fox"


TEXTS = [
    "Solar panels convert sunlight into electricity.",
    "Wind turbines convert wind energy into electricity.",
    "The solar system has eight planets.",
    "Electric cars store energy in batteries.",
    "Hydroelectric dams use flowing water.",
]
METAS = [
    {"topic": "energy", "year": 2020},
    {"topic": "energy", "year": 2021},
    {"topic": "space", "year": 2019},
    {"topic": "cars", "year": 2022},
    {"topic": "energy", "year": 2018},
]


@pytest.fixture
def retriever() -> BM25Retriever:
    return BM25Retriever.from_texts(TEXTS, METAS, ids=[f"d{i}" for i in range(5)], k=3)


def contents(docs: list[Document]) -> list[str]:
    return [d.page_content for d in docs]


def test_invoke_ranks_and_keeps_ids_and_metadata(retriever: BM25Retriever) -> None:
    docs = retriever.invoke("solar electricity")
    # "electricity" and "electric" share the stem "electr": d3 (shorter) beats d1
    assert [d.id for d in docs] == ["d0", "d2", "d3"]
    assert docs[0].metadata == {"topic": "energy", "year": 2020}  # untouched, no score key
    assert len(retriever.invoke("solar", k=1)) == 1
    assert retriever.invoke("quantum chromodynamics") == []
    assert retriever.invoke("") == []


async def test_ainvoke(retriever: BM25Retriever) -> None:
    docs = await retriever.ainvoke("wind", k=1)
    assert [d.id for d in docs] == ["d1"]


def test_scores_are_the_index_scores(retriever: BM25Retriever) -> None:
    pairs = retriever.search_with_scores("energy electricity", k=5)
    fresh = BM25Index()
    fresh.add(TEXTS)
    slots, scores = fresh.search("energy electricity", k=5)
    assert [d.id for d, _ in pairs] == [f"d{s}" for s in slots.tolist()]
    np.testing.assert_allclose([s for _, s in pairs], scores, atol=1e-12)
    assert all(isinstance(s, float) for _, s in pairs)


def test_filters(retriever: BM25Retriever) -> None:
    assert [d.id for d in retriever.invoke("energy", filter={"topic": "cars"})] == ["d3"]
    assert [d.id for d in retriever.invoke("solar", filter={"year": {"$gte": 2020}})] == ["d0"]
    assert retriever.invoke("solar", filter=lambda m: m["topic"] == "space")[0].id == "d2"
    restricted = BM25Retriever.from_texts(TEXTS, METAS, k=5, filter={"topic": "energy"})
    assert {d.metadata["topic"] for d in restricted.invoke("energy electricity solar")} == {
        "energy"
    }
    # a call-level filter replaces the default one
    assert [d.metadata["topic"] for d in restricted.invoke("solar", filter={"topic": "space"})] == [
        "space"
    ]
    with pytest.raises(ValueError, match="unknown operator"):
        retriever.invoke("solar", filter={"year": {"$between": [1, 2]}})


def test_returned_and_stored_documents_are_copies() -> None:
    meta = {"tag": "original"}
    source = Document("copy semantics matter", metadata=meta, id="x")
    r = BM25Retriever.from_documents([source])
    meta["tag"] = "changed by caller"
    got = r.invoke("copy")[0]
    assert got.metadata == {"tag": "original"}
    got.metadata["tag"] = "changed by consumer"
    assert r.invoke("copy")[0].metadata == {"tag": "original"}
    assert r.docs[0] is not source and r.docs[0].id == "x"


def test_generated_ids_are_stable_content_hashes() -> None:
    # Issue 15 item 11: documents given without an id come back with id=None, as from
    # langchain_community; they are stored under a stable content hash (suffixed for duplicates),
    # which add_documents returns and delete accepts.
    a = BM25Retriever.from_texts(["same", "same", "other"], [{}, {}, {"p": 1}])
    assert [d.id for d in a.docs] == [None, None, None]
    first = content_id(Document("same"))
    assert a.add_documents([Document("same")]) == [f"{first}-3"]  # identical docs all kept
    assert len(a.invoke("same")) == 3
    assert a.delete([first, f"{first}-3"]) and len(a.invoke("same")) == 1
    assert a.delete([content_id(Document("other", metadata={"p": 1}))]) and len(a) == 1
    # documents with and without ids mix
    r = BM25Retriever.from_documents([Document("x1", id="mine"), Document("y1")])
    assert r.docs[0].id == "mine" and r.docs[1].id is None
    assert [d.id for d in r.invoke("y1")] == [None]


def test_constructor_with_docs_only() -> None:
    r = BM25Retriever(docs=FOX_DOCS, k=2)
    assert len(r.invoke("fox")) == 2
    assert all(d.id is None for d in r.docs)  # none given: None, as from langchain_community
    assert len(BM25Retriever().invoke("anything")) == 0
    with pytest.raises(ValidationError, match="index must hold exactly the documents"):
        BM25Retriever(docs=FOX_DOCS, index=BM25Index())


def test_score_documents(retriever: BM25Retriever) -> None:
    probe = [
        Document("anything", id="d2"),  # by id
        Document(TEXTS[0]),  # by exact content
        Document("not indexed"),  # unknown
        Document(TEXTS[4], id="missing-id"),  # unknown id falls back to content
    ]
    got = retriever.score_documents("solar", probe)
    index = BM25Index()
    index.add(TEXTS)
    expected = index.score("solar", [2, 0])
    np.testing.assert_allclose(got[:2], expected, atol=1e-12)
    assert np.isnan(got[2])
    assert got[3] == 0.0
    assert retriever.score_documents("solar", []).shape == (0,)


def test_add_documents_upsert_and_delete(retriever: BM25Retriever) -> None:
    ids = retriever.add_documents([Document("Tidal power uses ocean tides.", id="t")])
    assert ids == ["t"]
    assert retriever.invoke("tides", k=1)[0].id == "t"
    # upsert: same id replaces the document
    retriever.add_documents([Document("Geothermal plants tap heat.", metadata={"v": 2})], ids=["t"])
    assert retriever.invoke("tides") == []
    assert retriever.invoke("geothermal")[0].metadata == {"v": 2}
    assert len(retriever) == 6
    retriever.delete(["d0", "t"])
    assert len(retriever) == 4
    assert "d0" not in {d.id for d in retriever.invoke("solar panels", k=5)}
    assert retriever.delete(["nope"]) is False  # unknown ids are ignored
    assert len(retriever) == 4
    # statistics are exact: same scores as a retriever built on the survivors
    survivors = [TEXTS[1], TEXTS[2], TEXTS[3], TEXTS[4]]
    fresh = BM25Retriever.from_texts(survivors, ids=["d1", "d2", "d3", "d4"])
    for q in ["energy electricity", "solar system", "water"]:
        got = {d.id: s for d, s in retriever.search_with_scores(q, k=10)}
        want = {d.id: s for d, s in fresh.search_with_scores(q, k=10)}
        assert got.keys() == want.keys()
        for key in want:
            assert got[key] == pytest.approx(want[key], abs=1e-12)
    with pytest.raises(ValueError, match="ids must be unique"):
        retriever.add_documents([Document("a", id="z"), Document("b", id="z")])
    with pytest.raises(TypeError, match="single str"):
        retriever.delete("d1")


def test_many_deletes_compact_the_index() -> None:
    texts = [f"document number {i} about topic{i % 7}" for i in range(3000)]
    r = BM25Retriever.from_texts(texts, ids=[str(i) for i in range(3000)], k=5)
    r.delete([str(i) for i in range(2000)])
    assert r.bm25_index.n_slots < 3000  # compacted
    assert len(r) == 1000
    hits = r.invoke("topic3", k=1000)
    assert {d.id for d in hits} == {str(i) for i in range(2000, 3000) if i % 7 == 3}
    assert r.score_documents("topic3", [Document("?", id="2005")])[0] > 0
    assert r.score_documents("topic3", [Document("?", id="2001")])[0] == 0.0
    assert np.isnan(r.score_documents("topic3", [Document("?", id="5")])[0])  # deleted


def test_save_load_round_trip(tmp_path: Path, retriever: BM25Retriever) -> None:
    retriever.filter = {"topic": "energy"}
    retriever.delete(["d2"])
    retriever.add_documents([Document("Solar farms cover deserts.", metadata={"topic": "energy"})])
    retriever.save(tmp_path)
    # issue 15 item 2: the index's atomic, checksummed format (was documents.json + index/)
    params = json.loads((tmp_path / "manifest.json").read_text())["parameters"]
    assert params["retriever"]["k"] == 3 and params["n_live"] == 5
    for mmap in (True, False):
        loaded = BM25Retriever.load(tmp_path, mmap=mmap)
        assert loaded.k == 3 and loaded.filter == {"topic": "energy"}
        assert [d.id for d in loaded.docs] == [d.id for d in retriever.docs]
        for q in ["solar", "energy", "electric cars"]:
            assert [(d.id, s) for d, s in loaded.search_with_scores(q)] == [
                (d.id, s) for d, s in retriever.search_with_scores(q)
            ]
        loaded.add_documents([Document("more solar", id="new")])
        loaded.delete(["d0"])
        assert "new" not in {d.id for d in loaded.invoke("solar", k=10)}  # default filter
        assert "new" in {d.id for d in loaded.invoke("solar", k=10, filter={})}


def test_save_errors(tmp_path: Path) -> None:
    r = BM25Retriever.from_texts(["x"], filter=lambda m: True)
    with pytest.raises(ValueError, match="filter is a callable"):
        r.save(tmp_path)
    r2 = BM25Retriever.from_texts(["x"], [{"bad": object()}])
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        r2.save(tmp_path / "two")
    with pytest.raises(FileNotFoundError):
        BM25Retriever.load(tmp_path / "nothing")


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="metadatas must have one dict per text: got 1 for 2"):
        BM25Retriever.from_texts(["a", "b"], [{}])
    with pytest.raises(ValueError, match="ids must have one id per text"):
        BM25Retriever.from_texts(["a", "b"], ids=["1"])
    with pytest.raises(ValueError, match="ids must be unique, got '1' twice"):
        BM25Retriever.from_texts(["a", "b"], ids=["1", "1"])
    with pytest.raises(TypeError, match="preprocess_func is not supported"):
        BM25Retriever.from_texts(["a"], preprocess_func=str.split)
    # issue 15 item 11: epsilon (rank_bm25's) is accepted now; other keys are still refused
    with pytest.raises(ValueError, match=r"bm25_params has unsupported keys \['nope'\]"):
        BM25Retriever.from_texts(["a"], bm25_params={"epsilon": 0.25, "nope": 1})
    with pytest.raises(ValidationError):
        BM25Retriever.from_texts(["a"], k=0)
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str"):
        BM25Retriever.from_texts(["a", 2])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="single str"):
        BM25Retriever.from_texts("abc")
    with pytest.raises(TypeError, match=r"documents\[0\] must be a Document"):
        BM25Retriever.from_documents(["text"])  # type: ignore[list-item]


def test_parameters_reach_the_index() -> None:
    r = BM25Retriever.from_texts(
        ["a b"], tokenizer=Tokenizer(stemmer=None), k1=1.2, b=0.5, method="bm25+"
    )
    index = r.bm25_index
    assert (index.k1, index.b, index.method, index.tokenizer.stemmer) == (1.2, 0.5, "bm25+", None)
    r2 = BM25Retriever.from_texts(["a b"], bm25_params={"k1": 0.9, "b": 0.4})
    assert (r2.bm25_index.k1, r2.bm25_index.b) == (0.9, 0.4)


def test_matches_inflections_that_whitespace_bm25_misses() -> None:
    community = pytest.importorskip("langchain_community.retrievers")
    docs = [
        "Running improves cardiovascular health in adults.",
        "The history of the marathon race.",
        "Cardiovascular disease statistics.",
    ]
    # "MARATHONS" vs "marathon": whitespace splitting (langchain_community) finds no match, so
    # rank-bm25 gives every document 0 and returns an arbitrary one; ours stems and lowercases.
    theirs = community.BM25Retriever.from_texts(docs, k=1)
    assert np.all(theirs.vectorizer.get_scores(["MARATHONS?"]) == 0)
    assert BM25Retriever.from_texts(docs, k=1).invoke("MARATHONS?")[0].page_content == docs[1]
    ours = BM25Retriever.from_texts(docs, k=3).invoke("does running improve health")
    assert [d.page_content for d in ours] == [docs[0]]


# ---------------------------------------------------------------------- copies of documents


def test_nested_metadata_is_not_shared() -> None:
    """Stored and returned documents are independent down to nested values."""
    source = Document("alpha beta", metadata={"tags": ["a"], "info": {"n": [1]}}, id="x")
    for r in (
        BM25Retriever.from_documents([source]),
        BM25Retriever.from_texts([source.page_content], [source.metadata], ids=["x"]),
        BM25Retriever(docs=[source]),
    ):
        got = r.invoke("alpha")[0]
        got.metadata["tags"].append("changed by consumer")
        got.metadata["info"]["n"].append(2)
        assert r.invoke("alpha")[0].metadata == {"tags": ["a"], "info": {"n": [1]}}
        assert r.docs[0].metadata == {"tags": ["a"], "info": {"n": [1]}}
        pairs = r.search_with_scores("alpha")
        pairs[0][0].metadata["tags"].clear()
        assert r.invoke("alpha", filter={"tags": "a"})[0].id == "x"
    # the caller's documents, changed after indexing
    r = BM25Retriever.from_documents([source])
    added = Document("gamma", metadata={"tags": ["g"]}, id="g")
    r.add_documents([added])
    source.metadata["tags"].append("changed by caller")
    added.metadata["tags"][0] = "changed by caller"
    assert r.docs[0].metadata["tags"] == ["a"] and r.docs[1].metadata["tags"] == ["g"]
    assert [d.id for d in r.invoke("gamma", filter={"tags": "g"})] == ["g"]
    assert r.invoke("alpha", filter={"tags": "changed by caller"}) == []


def test_metadata_that_cannot_be_deep_copied_is_shared() -> None:
    lock = threading.Lock()
    r = BM25Retriever.from_texts(["alpha"], [{"lock": lock, "n": 1}])
    assert r.invoke("alpha")[0].metadata["lock"] is lock


# ---------------------------------------------------------------------- model_copy / deepcopy


def _fresh() -> BM25Retriever:
    return BM25Retriever.from_documents(
        [Document("alpha one", id="a"), Document("alpha two", id="b")], k=10
    )


def test_model_copy_shares_documents_both_ways() -> None:
    original = _fresh()
    view = original.model_copy(update={"k": 1})  # what RetrieverSource does per search
    assert view.k == 1 and original.k == 10
    # mutate the copy, read the original (used to raise IndexError)
    assert original.invoke("alpha", filter={"n": 1}) == []  # caches a mask
    view.add_documents([Document("alpha three", metadata={"n": 1}, id="c")])
    assert [d.id for d in original.invoke("alpha", filter={"n": 1})] == ["c"]
    assert {d.id for d in original.invoke("alpha")} == {"a", "b", "c"}
    assert len(original) == len(view) == 3 and original.docs is view.docs
    view.delete(["a"])
    assert {d.id for d in original.invoke("alpha")} == {"b", "c"}
    assert np.isnan(original.score_documents("alpha", [Document("?", id="a")])[0])
    # mutate the original, read the copy
    original.add_documents([Document("alpha four", id="d")])
    original.delete(["b"])
    assert [d.id for d in view.invoke("alpha four")] == ["d"]
    assert {d.id for d in view.invoke("alpha", k=10)} == {"c", "d"}
    assert view.score_documents("four", [Document("?", id="d")])[0] > 0
    # upserts through the copy
    view.add_documents([Document("replaced text", id="c")])
    assert [d.page_content for d in original.invoke("replaced")] == ["replaced text"]
    # the scores are those of a retriever built on the survivors
    fresh = BM25Retriever.from_documents(original.docs, k=10)
    for q in ["alpha", "four", "replaced"]:
        want = [(d.id, s) for d, s in fresh.search_with_scores(q)]
        assert [(d.id, s) for d, s in original.search_with_scores(q)] == want
        assert [(d.id, s) for d, s in view.search_with_scores(q)] == want


def test_model_copy_survives_compaction() -> None:
    texts = [f"doc {i} topic{i % 5}" for i in range(2000)]
    original = BM25Retriever.from_texts(texts, ids=[str(i) for i in range(2000)], k=5)
    view = original.model_copy()
    view.delete([str(i) for i in range(1500)])  # compacts the shared index
    assert original.bm25_index.n_slots < 2000
    assert {d.id for d in original.invoke("topic3", k=1000)} == {
        str(i) for i in range(1500, 2000) if i % 5 == 3
    }
    original.add_documents([Document("doc new topic3", id="new")])
    assert "new" in {d.id for d in view.invoke("topic3", k=1000)}


def test_model_copy_cannot_desynchronise() -> None:
    r = _fresh()
    with pytest.raises(ValueError, match="cannot replace docs or index"):
        r.model_copy(update={"docs": []})
    with pytest.raises(AttributeError, match="docs is read-only"):
        r.docs = []
    with pytest.raises(AttributeError, match="index is read-only"):
        r.model_copy().index = BM25Index()
    r.k = 1  # ordinary fields stay assignable
    r.filter = {"n": 1}
    assert r.k == 1


def test_copies_are_thread_safe() -> None:
    original = _fresh()
    view = original.model_copy(update={"k": 3})
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(200):
                view.add_documents([Document(f"alpha extra {i}", metadata={"i": i}, id=f"x{i}")])
                if i % 3 == 0:
                    view.delete([f"x{i}"])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while thread.is_alive():
            original.invoke("alpha extra", filter={"i": {"$gte": 0}})
            original.score_documents("alpha", [Document("?", id="a")])
    except BaseException as exc:  # pragma: no cover
        errors.append(exc)
    thread.join()
    assert errors == []
    assert len(original) == 2 + 200 - 67


def test_deepcopy_is_independent() -> None:
    original = BM25Retriever.from_documents(
        [Document("alpha one", metadata={"tags": ["t"]}, id="a"), Document("alpha two", id="b")]
    )
    for clone in (copy.deepcopy(original), original.model_copy(deep=True)):
        assert clone.docs is not original.docs and clone.index is not original.index
        clone.add_documents([Document("alpha three", id="c")])
        clone.delete(["a"])
        clone.docs[0].metadata["x"] = 1
        assert {d.id for d in original.invoke("alpha")} == {"a", "b"}
        assert {d.id for d in clone.invoke("alpha")} == {"b", "c"}
        original.delete(["b"])
        assert {d.id for d in clone.invoke("alpha")} == {"b", "c"}
        original.add_documents([Document("alpha two", id="b")])
        assert original.docs[1].metadata == {}
        assert clone.invoke("one") == [] and len(original.invoke("one")) == 1
        assert clone.docs is clone.documents  # the copy is consistent with itself


def test_pickle_raises_a_clear_error() -> None:
    r = _fresh()
    for obj in (r, r.model_copy()):
        with pytest.raises(TypeError, match=r"cannot be pickled.*save\(path\).*load\(path\)"):
            pickle.dumps(obj)


# ---------------------------------------------------------------------- delete, arguments


def test_delete_ignores_unknown_ids_like_hybrid_index() -> None:
    r = _fresh()
    assert r.delete([]) is False
    assert r.delete(["nope", "a", "a"]) is True
    assert [d.id for d in r.docs] == ["b"]
    assert r.delete(["a"]) is False
    assert r.delete(("b",)) is True and len(r) == 0


def test_from_texts_accepts_community_positional_order() -> None:
    r = BM25Retriever.from_texts(["a b", "c d"], None, None, {"k1": 0.9, "b": 0.3}, k=1)
    assert (r.bm25_index.k1, r.bm25_index.b, r.k) == (0.9, 0.3, 1)
    r = BM25Retriever.from_texts(["a b"], [{"n": 1}], ["i"], bm25_params={"method": "bm25+"})
    assert r.bm25_index.method == "bm25+" and r.docs[0].id == "i"
    community = pytest.importorskip("langchain_community.retrievers")
    theirs = list(inspect.signature(community.BM25Retriever.from_texts).parameters)[:4]
    ours = list(inspect.signature(BM25Retriever.from_texts).parameters)[:4]
    assert ours == theirs == ["texts", "metadatas", "ids", "bm25_params"]


def test_unknown_arguments_are_rejected() -> None:
    with pytest.raises(
        TypeError, match=r"from_texts\(\) got unexpected keyword .*'kk'.*accepted: k,"
    ):
        BM25Retriever.from_texts(["a"], kk=3)
    with pytest.raises(TypeError, match=r"from_documents\(\) got unexpected keyword .*'fliter'"):
        BM25Retriever.from_documents([Document("a")], fliter={"a": 1})
    with pytest.raises(TypeError, match=r"got unexpected keyword .*'docs'"):
        BM25Retriever.from_texts(["a"], docs=[])
    with pytest.raises(ValidationError, match=r"unknown argument\(s\) \['kk'\].*accepted: .*k"):
        BM25Retriever(docs=[], kk=3)
    with pytest.raises(TypeError, match="preprocess_func is not supported"):
        BM25Retriever.from_documents([Document("a")], preprocess_func=str.split)
    # fields are still accepted
    r = BM25Retriever.from_texts(["a"], filter={"n": 1}, tags=["t"], metadata={"m": 1}, name="x")
    assert (r.filter, r.tags, r.metadata, r.name) == ({"n": 1}, ["t"], {"m": 1}, "x")
