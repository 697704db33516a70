"""Pseudo-relevance feedback: the pure math, weighted BM25 queries, the retriever and tuning."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from langchain_core.documents import Document

from langchain_fusion import FusionRetriever, HybridIndex
from langchain_fusion.evaluation import evaluate, tune_feedback
from langchain_fusion.feedback import check_feedback, rm3_terms, rocchio
from langchain_fusion.lexical import BM25Index
from tests.fakes import BagOfWordsEmbedding, ScriptedSource

# ------------------------------------------------------------------------------ pure math


def test_rocchio_closed_form() -> None:
    q = np.array([3.0, 4.0])  # normalized to [0.6, 0.8]
    fb = np.array([[1.0, 0.0], [0.0, 1.0]])  # mean [0.5, 0.5]
    np.testing.assert_allclose(rocchio(q, fb, 0.25), [0.75 * 0.6 + 0.125, 0.75 * 0.8 + 0.125])
    np.testing.assert_allclose(rocchio(q, fb, 0.0), [0.6, 0.8])
    np.testing.assert_allclose(rocchio(q, fb, 1.0), [0.5, 0.5])
    np.testing.assert_allclose(rocchio(q, np.zeros((0, 2)), 0.5), [0.6, 0.8])
    with pytest.raises(ValueError, match=r"shape \(m, 2\)"):
        rocchio(q, np.ones((2, 3)), 0.5)


def test_rm3_terms_closed_form() -> None:
    query = ["solar", "solar", "panel"]  # P(t|q): solar 2/3, panel 1/3
    docs = [["solar", "roof"], ["roof", "roof", "tile", "solar"]]
    # P(t|fb) = mean over docs of tf/len: solar (1/2 + 1/4)/2, roof (1/2 + 1/2)/2, tile 1/8
    terms = rm3_terms(query, docs, n_terms=2, weight=0.4)
    fb = {"roof": 0.5, "solar": 0.375}  # top 2, renormalized below
    total = sum(fb.values())
    expected = {
        "solar": 0.6 * 2 / 3 + 0.4 * fb["solar"] / total,
        "panel": 0.6 * 1 / 3,
        "roof": 0.4 * fb["roof"] / total,
    }
    assert terms.keys() == expected.keys()
    for t, w in expected.items():
        assert terms[t] == pytest.approx(w)
    assert sum(terms.values()) == pytest.approx(1.0)


def test_rm3_terms_edges() -> None:
    assert rm3_terms(["a", "b"], [], weight=0.5) == {"a": 0.25, "b": 0.25}
    assert rm3_terms(["a"], [["b"]], weight=0.0) == {"a": 1.0, "b": 0.0}
    assert rm3_terms(["a"], [["b"]], weight=1.0) == {"a": 0.0, "b": 1.0}
    # a query with no known term is answered by the feedback alone
    assert rm3_terms(["zz"], [["b", "c"]], known=lambda t: t != "zz") == {"b": 0.5, "c": 0.5}
    assert rm3_terms([], [], n_terms=3) == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-1, 0.5, 20), "feedback_docs must be an integer >= 0"),
        ((True, 0.5, 20), "feedback_docs"),
        ((2, 1.5, 20), r"feedback_weight must be a number in \[0, 1\]"),
        ((2, "half", 20), "feedback_weight"),
        ((2, 0.5, 0), "feedback_terms must be an integer >= 1"),
    ],
)
def test_check_feedback_rejects(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_feedback(*args)


# ------------------------------------------------------------------------------ weighted BM25

TEXTS = [
    "solar panel efficiency and photovoltaic output",
    "photovoltaic cells convert sunlight into power",
    "wind turbine blade noise",
    "solar water heating for homes",
    "tidal power stations",
]


def test_weighted_query_equals_text_query() -> None:
    index = BM25Index()
    index.add(TEXTS)
    slots, scores = index.search("solar solar panel", k=5)
    w_slots, w_scores = index.search({"solar": 2.0, "panel": 1.0}, k=5)
    assert slots.tolist() == w_slots.tolist()
    np.testing.assert_allclose(scores, w_scores)
    np.testing.assert_allclose(index.score({"solar": 2.0, "panel": 1.0}, slots), scores)
    # weights scale the score linearly; unknown and zero-weight terms are ignored
    np.testing.assert_allclose(
        index.search({"solar": 1.0, "panel": 0.5, "zzz": 3.0, "wind": 0.0}, k=5)[1], scores / 2
    )


def test_weighted_query_rejects_bad_input() -> None:
    index = BM25Index()
    index.add(TEXTS)
    with pytest.raises(ValueError, match="finite and >= 0"):
        index.search({"solar": -1.0}, k=2)
    with pytest.raises(ValueError, match="finite and >= 0"):
        index.score({"solar": float("nan")}, [0])
    with pytest.raises(TypeError, match="query terms must be str"):
        index.search({1: 1.0}, k=2)  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"str or a \{term: weight\} mapping"):
        index.search(["solar"], k=2)  # type: ignore[arg-type]


def test_expand_adds_feedback_terms_known_to_the_index() -> None:
    index = BM25Index()
    index.add(TEXTS)
    terms = index.expand("solar", [TEXTS[0], "unindexed zebra words"], n_terms=5)
    assert "photovolta" in terms and "solar" in terms
    assert "zebra" not in terms  # only terms of live documents
    assert sum(terms.values()) == pytest.approx(1.0)
    slots, _ = index.search(terms, k=5)
    assert 1 in slots.tolist()  # reached through "photovoltaic", not a query word
    with pytest.raises(TypeError, match="sequence of texts"):
        index.expand("solar", "one text")


# ------------------------------------------------------------------------------ retriever


@pytest.fixture
def index() -> HybridIndex:
    return HybridIndex.from_texts(
        TEXTS, BagOfWordsEmbedding(), ids=[f"d{i}" for i in range(len(TEXTS))]
    )


def test_feedback_expands_both_sides(index: HybridIndex) -> None:
    plain = FusionRetriever.from_index(index, k=5)
    fb = FusionRetriever.from_index(index, k=5, feedback_docs=1, feedback_weight=0.5)
    before = {d.id: d for d in plain.invoke("solar panel")}
    after = {d.id: d for d in fb.invoke("solar panel")}
    assert "feedback" not in before["d0"].metadata["fusion"]
    first_top = plain.invoke("solar panel", k=1)[0].id
    assert after["d0"].metadata["fusion"]["feedback"] == {"documents": [first_top], "weight": 0.5}
    # d1 shares no word with the query; the expanded BM25 query reaches it through d0's terms
    assert before["d1"].metadata["fusion"]["retrievers"]["bm25"]["raw"] == 0.0
    assert after["d1"].metadata["fusion"]["retrievers"]["bm25"]["raw"] > 0.0
    # the dense query moved towards d0
    q = np.asarray(index.embed_query("solar panel"))
    moved = rocchio(q, index.get_vectors([first_top]), 0.5)
    assert after["d1"].metadata["fusion"]["retrievers"]["dense"]["raw"] == pytest.approx(
        float(index.score_dense(moved / np.linalg.norm(moved), ["d1"])[0]), abs=1e-5
    )


def test_feedback_off_is_the_plain_retriever(index: HybridIndex) -> None:
    plain = FusionRetriever.from_index(index, k=5)
    off = FusionRetriever.from_index(index, k=5, feedback_docs=0, feedback_weight=0.9)
    assert [d.metadata for d in plain.invoke("solar")] == [d.metadata for d in off.invoke("solar")]
    # and weight 0 expands nothing: same ranking as without feedback
    zero = FusionRetriever.from_index(index, k=5, feedback_docs=2, feedback_weight=0.0)
    assert [d.id for d in zero.invoke("solar")] == [d.id for d in plain.invoke("solar")]


def test_feedback_per_call_sync_and_async_agree(index: HybridIndex) -> None:
    r = FusionRetriever.from_index(index, k=4)
    sync = r.invoke("solar power", feedback_docs=2)
    other = asyncio.run(r.ainvoke("solar power", feedback_docs=2))
    assert [(d.id, d.metadata) for d in sync] == [(d.id, d.metadata) for d in other]
    assert len(sync[0].metadata["fusion"]["feedback"]["documents"]) == 2
    assert r.gather("solar power").feedback == []
    assert len(r.model_copy(update={"feedback_docs": 2}).gather("solar power").feedback) == 2


def test_feedback_respects_filter() -> None:
    index = HybridIndex.from_texts(
        TEXTS,
        BagOfWordsEmbedding(),
        metadatas=[{"lang": "en" if i % 2 else "xx"} for i in range(len(TEXTS))],
        ids=[f"d{i}" for i in range(len(TEXTS))],
    )
    r = FusionRetriever.from_index(index, k=5, feedback_docs=2)
    docs = r.invoke("solar power", filter={"lang": "en"})
    assert docs and all(d.metadata["lang"] == "en" for d in docs)
    assert set(docs[0].metadata["fusion"]["feedback"]["documents"]) <= {"d1", "d3"}


def test_source_without_feedback_keeps_its_first_answer(index: HybridIndex) -> None:
    from langchain_fusion.sources import HybridDenseSource

    scripted = ScriptedSource([Document(TEXTS[2], id="d2")], [1.0])
    r = FusionRetriever(
        retrievers=[HybridDenseSource(index), scripted],
        names=["dense", "fixed"],
        k=5,
        feedback_docs=1,
    )
    docs = r.invoke("wind")
    assert len(scripted.calls) == 1  # asked once, reused in the feedback round
    assert docs[0].metadata["fusion"]["feedback"]["documents"]


def test_feedback_needs_a_source_that_supports_it() -> None:
    scripted = ScriptedSource([Document("a", id="1")], [1.0])
    with pytest.raises(ValueError, match="HybridIndex"):
        FusionRetriever(retrievers=[scripted], feedback_docs=2)
    r = FusionRetriever(retrievers=[scripted])
    with pytest.raises(ValueError, match="feedback_docs needs a retriever"):
        r.invoke("a", feedback_docs=1)
    with pytest.raises(ValueError, match="feedback_weight"):
        r.invoke("a", feedback_weight=2)


# ------------------------------------------------------------------------------ tuning

QUERIES = {"q1": "solar panel", "q2": "sunlight power", "q3": "wind noise"}
QRELS = {"q1": {"d0": 1, "d1": 1}, "q2": {"d1": 1, "d0": 1}, "q3": {"d2": 1}}


def test_tune_feedback_scores_match_the_real_retriever(index: HybridIndex) -> None:
    r = FusionRetriever.from_index(index, k=10)
    report = tune_feedback(
        r,
        QUERIES,
        QRELS,
        grid={"feedback_docs": [0, 1, 2], "feedback_weight": [0.3, 0.6]},
        metric="ndcg@3",
        show_progress=False,
    )
    # feedback off is searched once, whatever the weight
    assert report.settings[0] == {"feedback_docs": 0}
    assert len(report.settings) == 5
    assert report.per_query.shape == (5, 3)
    for setting, score in zip(report.settings, report.scores, strict=True):
        real = evaluate(
            r.model_copy(update=setting), QUERIES, QRELS, metrics=["ndcg@3"], show_progress=False
        )
        assert score == pytest.approx(real.metrics["ndcg@3"])
    assert report.retriever.feedback_docs == report.best["feedback_docs"]
    assert report.best_score == pytest.approx(report.scores.max())


def test_tune_feedback_rejects_bad_grids(index: HybridIndex) -> None:
    r = FusionRetriever.from_index(index)
    with pytest.raises(ValueError, match="fusion settings are tuned by tune"):
        tune_feedback(r, QUERIES, QRELS, grid={"alpha": [0.5]}, show_progress=False)
    with pytest.raises(ValueError, match="grid must vary"):
        tune_feedback(r, QUERIES, QRELS, grid={}, show_progress=False)
    with pytest.raises(ValueError, match="feedback_docs must be"):
        tune_feedback(r, QUERIES, QRELS, grid={"feedback_docs": [-1]}, show_progress=False)
    with pytest.raises(ValueError, match="empty"):
        tune_feedback(r, QUERIES, QRELS, grid={"feedback_docs": []}, show_progress=False)
    with pytest.raises(TypeError, match="FusionRetriever"):
        tune_feedback(index.as_retriever(), QUERIES, QRELS)  # type: ignore[arg-type]
    scripted = FusionRetriever(retrievers=[ScriptedSource([Document("a", id="1")], [1.0])])
    with pytest.raises(ValueError, match="HybridIndex"):
        tune_feedback(scripted, {"q": "a"}, {"q": {"1": 1}}, show_progress=False)


def test_explain_names_the_feedback_documents(index: HybridIndex) -> None:
    r = FusionRetriever.from_index(index, k=3, feedback_docs=2, feedback_weight=0.4)
    last = r.explain("solar panel").splitlines()[-1]
    top2 = FusionRetriever.from_index(index, k=2).invoke("solar panel")
    assert last == (
        f"(query expanded with 2 feedback document(s) {top2[0].id}, {top2[1].id} at weight 0.4)"
    )
    assert "feedback" not in FusionRetriever.from_index(index).explain("solar panel")


def test_feedback_documents_from_outside_the_index_are_skipped(index: HybridIndex) -> None:
    from langchain_fusion.sources import HybridDenseSource, HybridKeywordSource

    # the scripted source ranks a document the index does not hold (no id) first
    outsider = Document("solar panel leasing contracts")
    scripted = ScriptedSource([outsider, Document("tidal lagoons")], [10.0, 1.0])
    r = FusionRetriever(
        retrievers=[HybridDenseSource(index), HybridKeywordSource(index), scripted],
        weights=[0.2, 0.2, 0.6],
        k=5,
        feedback_docs=1,
    )
    docs = r.invoke("solar panel")
    assert docs[0].page_content == outsider.page_content
    # only the outsider was feedback: the index sides searched with the plain query
    plain = FusionRetriever(
        retrievers=[HybridDenseSource(index), HybridKeywordSource(index), scripted],
        weights=[0.2, 0.2, 0.6],
        k=5,
    ).invoke("solar panel")
    assert [d.metadata["fusion"]["retrievers"] for d in docs] == [
        d.metadata["fusion"]["retrievers"] for d in plain
    ]


def test_feedback_round_reuses_the_query_embedding() -> None:
    class Counting(BagOfWordsEmbedding):
        queries = 0

        def embed_query(self, text: str) -> list[float]:
            Counting.queries += 1
            return super().embed_query(text)

    index = HybridIndex.from_texts(TEXTS, Counting(), ids=[f"d{i}" for i in range(len(TEXTS))])
    r = FusionRetriever.from_index(index, feedback_docs=2)
    r.invoke("solar panel")
    assert Counting.queries == 1
    asyncio.run(r.ainvoke("solar panel"))
    assert Counting.queries == 2
