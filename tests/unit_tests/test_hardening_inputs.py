"""Hardening (issue 15), inputs and fusion: each attack of the campaign, as a test that holds.

* item 4: filters nested thousands of levels deep (and ``$not`` x1,001) raise a clear
  ``ValueError``, never ``RecursionError``; the CLI prints one line;
* item 6: booleans are refused for numeric retriever settings in the constructor as per call;
* item 12: a wrapped community retriever's own ``k`` is honoured, and a BM25 score of 0 is not a
  match (no RRF credit);
* item 15: ``explain`` shows "no keyword match" instead of a BM25 score 0 normalized to 1.000.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_fusion import FusionRetriever
from langchain_fusion.cli import main
from langchain_fusion.filters import MAX_FILTER_DEPTH, compile_filter, filter_mask
from langchain_fusion.retriever import format_breakdown
from tests.fakes import BagOfWordsEmbedding

# ------------------------------------------------------------------------------------ item 4


def nested_and(depth: int) -> dict[str, Any]:
    flt: dict[str, Any] = {"page": 1}
    for _ in range(depth):
        flt = {"$and": [flt]}
    return flt


def nested_not(depth: int) -> dict[str, Any]:
    flt: dict[str, Any] = {"page": 1}
    for _ in range(depth):
        flt = {"$not": flt}
    return flt


@pytest.mark.parametrize(
    "flt",
    [nested_and(2_000), nested_and(1_000_000), nested_not(1_001), nested_not(200_000)],
    ids=["and-2000", "and-1e6", "not-1001", "not-200000"],
)
def test_deep_filters_raise_a_clear_error(flt: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=f"nested more than {MAX_FILTER_DEPTH} levels deep"):
        compile_filter(flt)
    with pytest.raises(ValueError, match="flatten it"):
        filter_mask([{"page": 1}], flt)


def test_a_filter_that_contains_itself_is_refused() -> None:
    flt: dict[str, Any] = {"page": 1}
    flt["$and"] = [flt]
    with pytest.raises(ValueError, match="nested more than"):
        compile_filter(flt)


def test_filters_within_the_limit_still_work() -> None:
    # 49 $and levels = 98 dicts and lists, plus the leaf dict: 99 <= 100
    assert filter_mask([{"page": 1}, {"page": 2}], nested_and(49)).tolist() == [True, False]
    assert compile_filter(nested_not(98))({"page": 1}) is True  # an even number of $not
    with pytest.raises(ValueError, match="nested more than"):
        compile_filter(nested_and(50))
    # a sub-filter shared many times is checked once per level, not once per path (2**60)
    shared: dict[str, Any] = {"page": 1}
    for _ in range(30):
        shared = {"$or": [shared, shared]}
    with pytest.raises(ValueError, match="nested more than"):
        compile_filter({"$and": [shared, nested_and(60)]})


def test_deep_filter_through_the_retriever() -> None:
    r = FusionRetriever.from_texts(
        ["a cat", "a dog"], DeterministicFakeEmbedding(size=8), metadatas=[{"page": 1}] * 2
    )
    with pytest.raises(ValueError, match="nested more than"):
        r.invoke("cat", filter=nested_and(2_000))
    with pytest.raises(ValueError, match="nested more than"):
        r.invoke("cat", filter=nested_not(1_001))


@pytest.mark.parametrize("target", ["index", "bm25"])
def test_deep_filter_straight_into_the_stores(target: str) -> None:
    from langchain_fusion import BM25Retriever, HybridIndex

    if target == "index":
        index = HybridIndex.from_texts(["a", "b"], DeterministicFakeEmbedding(size=8))
        call = lambda: index.similarity_search("a", filter=nested_and(2_000))  # noqa: E731
    else:
        bm25 = BM25Retriever.from_texts(["a b", "b c"])
        call = lambda: bm25.invoke("b", filter=nested_and(2_000))  # noqa: E731
    with pytest.raises(ValueError, match="nested more than"):
        call()


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(nested_and(400)),  # json.dumps itself recurses: 400 levels is as deep as it goes
        json.dumps(nested_not(900)),
        '{"$and": [' * 200_000 + "]}" * 200_000,  # the JSON parser's own limit
    ],
    ids=["and-400", "not-900", "raw-json-200000"],
)
def test_cli_deep_filter_is_one_line(capsys: pytest.CaptureFixture[str], text: str) -> None:
    code = main(["search", "--sample", "battery", "--filter", text])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --filter")
    assert "deep" in lines[0]


# ------------------------------------------------------------------------------------ item 6


def make_retriever(**kwargs: Any) -> FusionRetriever:
    return FusionRetriever.from_texts(
        ["a cat sat", "a dog ran"], DeterministicFakeEmbedding(size=8), **kwargs
    )


@pytest.mark.parametrize(
    "setting",
    [
        {"alpha": True},
        {"alpha": False},
        {"alpha": np.True_},
        {"k": True},
        {"fetch_k": True},
        {"rrf_k": False},
        {"weights": [True, False]},
        {"weights": np.array([True, False])},
        {"feedback_weight": True},
        {"feedback_docs": True},
        {"max_per_source": True},
    ],
    ids=lambda s: f"{next(iter(s))}={next(iter(s.values()))!r}",
)
def test_booleans_are_refused_everywhere(setting: dict[str, Any]) -> None:
    # pydantic alone reads True as 1.0 in the constructor; a call refused it: now both refuse
    # (TypeError or ValueError, naming the setting; the wording may change with the settings code)
    name = next(iter(setting))
    with pytest.raises((TypeError, ValueError), match=name):
        make_retriever(**setting)
    retriever = make_retriever()
    with pytest.raises((TypeError, ValueError), match=name):
        retriever.invoke("cat", **setting)


def test_numbers_are_still_accepted() -> None:
    assert make_retriever(alpha=1).alpha == 1.0
    assert len(make_retriever(weights=np.array([1.0, 0.5])).invoke("cat", alpha=0, k=1)) == 1


# ------------------------------------------------------------------------------------ item 12

FOX = [
    Document("the quick brown fox", id="fox"),
    Document("a lazy dog sleeps", id="dog"),
    Document("birds fly south in winter", id="birds"),
]


@pytest.fixture
def community() -> Any:
    pytest.importorskip("rank_bm25")
    module = pytest.importorskip("langchain_community.retrievers")
    return module


def wrap(retrievers: list[Any], **kwargs: Any) -> FusionRetriever:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return FusionRetriever(retrievers=retrievers, **kwargs)


def test_community_bm25_k1_twice_gives_one_document_like_ensemble(community: Any) -> None:
    ensemble_module = pytest.importorskip("langchain_classic.retrievers")
    bm25 = community.BM25Retriever.from_documents(FOX, k=1)
    ensemble = ensemble_module.EnsembleRetriever(retrievers=[bm25, bm25])
    theirs = ensemble.invoke("fox")
    for method in ("rrf", "convex"):
        ours = wrap([bm25, bm25], method=method).invoke("fox")
        assert [d.id for d in ours] == [d.id for d in theirs] == ["fox"]


def test_zero_bm25_score_is_not_a_match(community: Any) -> None:
    bm25 = community.BM25Retriever.from_documents(FOX)  # k not set: fetch_k sets the depth
    assert wrap([bm25]).sources[0].search("fox", 10).documents == [FOX[0]]
    fused = wrap([bm25, bm25], method="rrf").invoke("fox")
    assert [d.id for d in fused] == ["fox"]  # the two zero-score documents get no RRF credit
    assert wrap([bm25, bm25]).invoke("zebra") == []


def test_own_k_caps_only_when_set(community: Any) -> None:
    texts = [f"fox number {i}" for i in range(8)]
    unset = community.BM25Retriever.from_texts(texts)
    assert len(wrap([unset]).sources[0].search("fox", 6).documents) == 6
    bm25 = community.BM25Retriever.from_texts(texts, k=2)
    assert len(wrap([bm25]).sources[0].search("fox", 6).documents) == 2
    later = community.BM25Retriever.from_texts(texts)
    later.k = 3  # set after construction: honoured too
    assert len(wrap([later]).sources[0].search("fox", 6).documents) == 3


def test_own_bm25_retriever_k_caps_only_when_set(tmp_path: Path) -> None:
    from langchain_fusion import BM25Retriever

    texts = [f"fox number {i}" for i in range(8)]
    unset = BM25Retriever.from_texts(texts)
    assert unset.k == 4 and len(unset.invoke("fox")) == 4  # the default still returns 4
    assert len(wrap([unset]).sources[0].search("fox", 6).documents) == 6
    bm25 = BM25Retriever.from_texts(texts, k=2)
    assert len(wrap([bm25]).sources[0].search("fox", 6).documents) == 2
    assert len(wrap([bm25, bm25], method="rrf").invoke("fox", k=5)) == 2  # as EnsembleRetriever
    later = BM25Retriever.from_documents([Document(t) for t in texts])
    later.k = 3  # set after construction: honoured too
    assert len(wrap([later]).sources[0].search("fox", 6).documents) == 3
    for retriever, expected in ((unset, 6), (bm25, 2)):  # a save keeps whether k was set
        path = retriever.save(tmp_path / str(expected))
        loaded = BM25Retriever.load(path)
        assert len(wrap([loaded]).sources[0].search("fox", 6).documents) == expected


def test_vectorstore_retriever_k_is_honoured() -> None:
    from langchain_core.vectorstores import InMemoryVectorStore

    store = InMemoryVectorStore.from_texts(
        [f"fox number {i}" for i in range(8)], BagOfWordsEmbedding()
    )
    capped = wrap([store.as_retriever(search_kwargs={"k": 2})])
    assert capped.sources[0].max_k == 2
    assert len(capped.invoke("fox", k=5)) == 2
    assert len(wrap([store.as_retriever()]).invoke("fox", k=5)) == 5
    with pytest.raises(ValueError, match="search_kwargs k must be an integer"):
        wrap([store.as_retriever(search_kwargs={"k": True})])


# ------------------------------------------------------------------------------------ item 15


def test_explain_says_no_keyword_match() -> None:
    r = FusionRetriever.from_texts(
        ["a cat sat", "b dog ran", "c bird flew"], DeterministicFakeEmbedding(size=8)
    )
    table = r.explain("zebra")  # no document holds the word: every BM25 score is 0
    rows = table.splitlines()[1:]
    assert len(rows) == 3 and all("no keyword match" in row for row in rows)
    assert "0.000/1.000" not in table
    table = r.explain("cat")
    cat_row = next(row for row in table.splitlines() if "a cat sat" in row)
    assert "no keyword match" not in cat_row and "/1.000/1" in cat_row


def test_format_breakdown_keeps_real_zero_ranks() -> None:
    found = Document(
        "x",
        metadata={
            "fusion": {
                "score": 0.5,
                "retrievers": {"bm25": {"raw": 0.0, "normalized": 0.0, "rank": 1}},
            }
        },
    )
    assert "0.000/0.000/1" in format_breakdown([found], ["bm25"])
