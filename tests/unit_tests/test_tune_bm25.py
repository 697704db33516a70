"""BM25 k1/b: changed in place (HybridIndex, BM25Index) and chosen by ``tune_bm25``."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_fusion import BM25Retriever, FusionRetriever, HybridIndex
from langchain_fusion.evaluation import tune, tune_bm25
from langchain_fusion.lexical import BM25Index
from tests.fakes import BagOfWordsEmbedding, FixedRetriever, word_corpus, word_queries

tune_module = importlib.import_module("langchain_fusion.tuning.bm25")  # where tune_bm25 calls tune

PAIRS = [(0.3, 0.2), (0.7, 0.5), (1.2, 0.9), (2.0, 1.0)]


def _index(docs: list[Document], **bm25: float) -> HybridIndex:
    index = HybridIndex(BagOfWordsEmbedding(), **bm25)
    index.add_documents(docs)
    return index


# ------------------------------------------------------------------ set_params / set_bm25_params


@pytest.mark.parametrize(("k1", "b"), PAIRS)
def test_set_bm25_params_scores_as_an_index_built_with_them(k1: float, b: float) -> None:
    docs = word_corpus()
    changed, built = _index(docs), _index(docs, k1=k1, b=b)
    changed.set_bm25_params(k1=k1, b=b)
    ids = [d.id for d in docs if d.id]
    for query in ("battery winter", "solar solar panel", "reset"):
        got, want = changed.search_keyword(query, 10), built.search_keyword(query, 10)
        assert got[0] == want[0]
        np.testing.assert_allclose(got[1], want[1], rtol=1e-12)
        np.testing.assert_allclose(
            changed.score_keyword(query, ids), built.score_keyword(query, ids), rtol=1e-12
        )
    assert changed.bm25_params == built.bm25_params


def test_set_params_keeps_what_is_not_given_and_refuses_bad_values() -> None:
    index = BM25Index(k1=1.2, b=0.6)
    index.set_params(b=0.3)
    assert (index.k1, index.b) == (1.2, 0.3)
    for bad in ({"k1": -1.0}, {"b": 1.5}, {"k1": float("nan")}):
        with pytest.raises(ValueError, match=r"k1|b"):
            index.set_params(**bad)
    with pytest.raises(TypeError, match="k1 must be a number"):
        index.set_params(k1="high")  # type: ignore[arg-type]
    assert (index.k1, index.b) == (1.2, 0.3)


def test_saved_index_keeps_the_changed_params(tmp_path: Any) -> None:
    index = _index(word_corpus())
    index.set_bm25_params(k1=0.8, b=0.4)
    index.save(tmp_path / "idx")
    loaded = HybridIndex.load(tmp_path / "idx", embedding=BagOfWordsEmbedding())
    assert loaded.bm25_params == index.bm25_params
    got, want = loaded.search_keyword("battery cold", 5), index.search_keyword("battery cold", 5)
    assert got[0] == want[0]
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12)


# ------------------------------------------------------------------ tune_bm25


def test_tune_bm25_is_the_outer_loop_over_fresh_indexes() -> None:
    """Each row equals `tune` on an index built with that pair; the best pair stays set."""
    docs = word_corpus()
    queries, qrels = word_queries(docs)
    grid = {"alpha": [0.0, 0.3, 0.6], "normalization": ["minmax", "zscore"]}
    index = _index(docs)
    retriever = FusionRetriever.from_index(index, fetch_k=20)
    report = tune_bm25(
        retriever,
        queries,
        qrels,
        bm25_grid={"k1": [0.3, 1.2, 2.0], "b": [0.2, 0.9]},
        grid=grid,
        show_progress=False,
    )
    expected = []
    for k1 in (0.3, 1.2, 2.0):
        for b in (0.2, 0.9):
            fresh = FusionRetriever.from_index(_index(docs, k1=k1, b=b), fetch_k=20)
            rep = tune(fresh, queries, qrels, grid=grid, show_progress=False)
            expected.append(({"k1": k1, "b": b, **rep.best}, rep.best_score))
    assert report.settings == [s for s, _ in expected]
    np.testing.assert_allclose(report.scores, [score for _, score in expected], rtol=1e-12)
    assert report.best_score == max(score for _, score in expected)
    assert len(set(np.round(report.scores, 6))) > 1  # the pairs really differ here
    best = report.best
    assert index.bm25_params["k1"] == best["k1"] and index.bm25_params["b"] == best["b"]
    fresh = FusionRetriever.from_index(_index(docs, k1=best["k1"], b=best["b"]), fetch_k=20)
    fresh = fresh.model_copy(
        update={"alpha": best["alpha"], "normalization": best["normalization"]}
    )
    for query in list(queries.values())[:5]:
        got = [d.id for d in report.retriever.invoke(query)]
        assert got == [d.id for d in fresh.invoke(query)]
    table = report.to_markdown()
    assert table.splitlines()[0].startswith("| rank | k1 | b | method |")


def test_tune_bm25_with_the_package_bm25_retriever() -> None:
    docs = word_corpus()
    queries, qrels = word_queries(docs)
    bm25 = BM25Retriever.from_documents(docs)
    store = InMemoryVectorStore.from_documents(docs, BagOfWordsEmbedding())
    retriever = FusionRetriever(vectorstore=store, keyword_retriever=bm25, fetch_k=20)
    report = tune_bm25(
        retriever,
        queries,
        qrels,
        bm25_grid={"k1": [0.3, 2.0]},
        grid={"alpha": [0.0]},
        show_progress=False,
    )
    assert [s["b"] for s in report.settings] == [0.75, 0.75]  # b kept
    assert bm25.bm25_index.k1 == report.best["k1"]


def test_tune_bm25_restores_the_params_when_tuning_fails(monkeypatch: Any) -> None:
    docs = word_corpus()
    queries, qrels = word_queries(docs)
    index = _index(docs, k1=1.1, b=0.6)
    calls = []

    def failing_tune(*args: Any, **kwargs: Any) -> Any:
        calls.append(index.bm25_params["k1"])
        if len(calls) == 2:
            raise RuntimeError("interrupted")
        return tune(*args, **kwargs)

    monkeypatch.setattr(tune_module, "tune", failing_tune)
    with pytest.raises(RuntimeError, match="interrupted"):
        tune_bm25(
            FusionRetriever.from_index(index),
            queries,
            qrels,
            bm25_grid={"k1": [0.3, 2.0]},
            grid={"alpha": [0.5]},
            show_progress=False,
        )
    assert calls == [0.3, 2.0]
    assert (index.bm25_params["k1"], index.bm25_params["b"]) == (1.1, 0.6)


@pytest.mark.parametrize(
    ("bm25_grid", "error", "match"),
    [
        ({"k2": [1.0]}, ValueError, "bm25_grid must vary k1 and/or b"),
        ({}, ValueError, "bm25_grid must vary k1 and/or b"),
        ({"k1": []}, ValueError, "empty"),
        ({"k1": [-0.5]}, ValueError, "k1 must be >= 0"),
        ({"b": [1.5]}, ValueError, r"b must be in \[0, 1\]"),
        ([0.5, 0.75], TypeError, "bm25_grid must be a mapping"),
    ],
)
def test_tune_bm25_bad_grids(bm25_grid: Any, error: type, match: str) -> None:
    docs = word_corpus(10)
    retriever = FusionRetriever.from_documents(docs, BagOfWordsEmbedding())
    with pytest.raises(error, match=match):
        tune_bm25(retriever, {"q": "battery"}, {"q": {"d1": 1}}, bm25_grid=bm25_grid)
    assert retriever.sources[1].index.bm25_params["k1"] == 1.5  # untouched


def test_tune_bm25_needs_a_keyword_side_of_this_package() -> None:
    docs = word_corpus(10)
    store = InMemoryVectorStore.from_documents(docs, BagOfWordsEmbedding())
    retriever = FusionRetriever(retrievers=[store, FixedRetriever(docs=docs)])
    with pytest.raises(ValueError, match="tune_bm25 needs exactly one keyword side"):
        tune_bm25(retriever, {"q": "battery"}, {"q": {"d1": 1}})
    with pytest.raises(TypeError, match="must be a FusionRetriever"):
        tune_bm25(store, {"q": "battery"}, {"q": {"d1": 1}})  # type: ignore[arg-type]


def test_ties_keep_the_current_pair_else_the_first() -> None:
    """With alpha=1 (dense only) every pair scores the same."""
    docs = word_corpus()
    queries, qrels = word_queries(docs)
    index = _index(docs, k1=1.2, b=0.75)
    retriever = FusionRetriever.from_index(index)
    grid = {"alpha": [1.0]}
    report = tune_bm25(retriever, queries, qrels, grid=grid, show_progress=False)
    assert len(set(report.scores.tolist())) == 1
    assert (report.best["k1"], report.best["b"]) == (1.2, 0.75)  # in the grid: kept
    index.set_bm25_params(k1=2.0, b=0.3)  # not in the grid: the first pair
    report = tune_bm25(retriever, queries, qrels, grid=grid, show_progress=False)
    assert (report.best["k1"], report.best["b"]) == (0.7, 0.5)
    assert index.bm25_params["k1"] == 0.7
