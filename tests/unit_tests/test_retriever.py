from __future__ import annotations

import asyncio
import copy
import random
import time

import numpy as np
import pytest
from langchain_core.documents import Document

from langchain_fusion import FusionRetriever
from tests.fakes import BagOfWordsEmbedding, ScriptedSource

TEXTS = [
    "Error E-217 means the battery is too cold to charge.",
    "In winter, keep the battery above freezing so it can charge.",
    "The warranty covers ten years or 6000 cycles.",
    "Run lumenctl --reset-bms to reset the battery management system.",
    "Firmware 4.2.1 fixed the export limit bug.",
    "Clean the air vents every six months.",
]


def docs(*names: str) -> list[Document]:
    return [Document(page_content=n, metadata={"source": n[0]}) for n in names]


@pytest.fixture(scope="module")
def retriever() -> FusionRetriever:
    return FusionRetriever.from_texts(
        TEXTS,
        BagOfWordsEmbedding(),
        metadatas=[{"source": f"s{i % 2}", "n": i} for i in range(len(TEXTS))],
        ids=[f"d{i}" for i in range(len(TEXTS))],
    )


def scripted(
    a: list[Document],
    a_scores: list[float],
    b: list[Document],
    b_scores: list[float],
    **kwargs: object,
) -> FusionRetriever:
    return FusionRetriever(
        retrievers=[ScriptedSource(a, a_scores), ScriptedSource(b, b_scores)],
        names=["dense", "bm25"],
        **kwargs,
    )


# ---------------------------------------------------------------------------------- behaviour


def test_returns_at_most_k_with_breakdown(retriever: FusionRetriever) -> None:
    out = retriever.invoke("battery charge cold")
    assert len(out) == 4
    info = out[0].metadata["fusion"]
    assert info["method"] == "convex" and info["normalization"] == "minmax"
    assert info["rank"] == 1
    assert set(info["retrievers"]) == {"dense", "bm25"}
    scores = [d.metadata["fusion"]["score"] for d in out]
    assert scores == sorted(scores, reverse=True)
    for d in out:
        assert d.id is not None and d.metadata["source"] in {"s0", "s1"}


def test_exact_term_found(retriever: FusionRetriever) -> None:
    assert retriever.invoke("E-217", k=1)[0].id == "d0"
    assert retriever.invoke("lumenctl reset", k=1)[0].id == "d3"


def test_per_call_k_and_k_larger_than_corpus(retriever: FusionRetriever) -> None:
    assert len(retriever.invoke("battery", k=2)) == 2
    assert len(retriever.invoke("battery", k=50)) == len(TEXTS)


def test_alpha_extremes_follow_one_side() -> None:
    a = docs("a1", "a2", "a3")
    b = docs("b1", "a3", "a2")
    r = scripted(a, [0.9, 0.8, 0.1], b, [10.0, 9.0, 1.0], k=3, complete_scoring=False)
    assert [d.page_content for d in r.invoke("q", alpha=1.0)] == ["a1", "a2", "a3"]
    assert [d.page_content for d in r.invoke("q", alpha=0.0)] == ["b1", "a3", "a2"]


def test_convex_closed_form() -> None:
    # dense min-max: a1 1.0, a2 0.5, a3 0.0 ; bm25 min-max: a3 1.0, a2 0.0 ; missing -> min (0)
    a = docs("a1", "a2", "a3")
    b = docs("a3", "a2")
    r = scripted(a, [3.0, 2.0, 1.0], b, [5.0, 1.0], k=3, alpha=0.6, complete_scoring=False)
    out = r.invoke("q")
    got = {d.page_content: d.metadata["fusion"]["score"] for d in out}
    assert got == pytest.approx({"a1": 0.6, "a2": 0.3, "a3": 0.4})
    assert [d.page_content for d in out] == ["a1", "a3", "a2"]


def test_rrf_closed_form() -> None:
    a = docs("x", "y")
    b = docs("y", "z")
    r = scripted(
        a, [2.0, 1.0], b, [2.0, 1.0], k=3, method="rrf", complete_scoring=False, weights=[1.0, 2.0]
    )
    got = {d.page_content: d.metadata["fusion"]["score"] for d in r.invoke("q")}
    assert got == pytest.approx({"x": 1 / 61, "y": 1 / 62 + 2 / 61, "z": 2 / 62})
    assert r.invoke("q")[0].metadata["fusion"]["normalization"] is None


def test_shuffling_one_list_does_not_change_result() -> None:
    rng = random.Random(0)
    a = docs(*[f"doc{i}" for i in range(30)])
    a_scores = [1.0 - i / 30 for i in range(30)]
    b_idx = list(range(10, 40))
    b = docs(*[f"doc{i}" for i in b_idx])
    b_scores = [float(40 - i) for i in b_idx]
    ref = scripted(a, a_scores, b, b_scores, k=10).invoke("q")
    pairs = list(zip(b, b_scores))
    for _ in range(5):
        rng.shuffle(pairs)
        # A shuffled list with its scores attached: identity alignment must not care about order
        # of arrival for scores (ranks do change, so we check the convex method).
        out = scripted(a, a_scores, [p[0] for p in pairs], [p[1] for p in pairs], k=10).invoke("q")
        assert [d.page_content for d in out] == [d.page_content for d in ref]
        assert [d.metadata["fusion"]["score"] for d in out] == pytest.approx(
            [d.metadata["fusion"]["score"] for d in ref]
        )


def test_input_documents_not_mutated() -> None:
    a = docs("a1", "a2")
    b = docs("a2", "a3")
    before = copy.deepcopy([(d.page_content, d.metadata) for d in a + b])
    scripted(a, [1.0, 0.5], b, [2.0, 1.0]).invoke("q")
    assert [(d.page_content, d.metadata) for d in a + b] == before


def test_duplicate_inside_one_list_counts_once() -> None:
    a = docs("x", "x", "y")
    b = docs("z")
    out = scripted(a, [3.0, 2.0, 1.0], b, [1.0], k=10, complete_scoring=False).invoke("q")
    assert sorted(d.page_content for d in out) == ["x", "y", "z"]
    x = next(d for d in out if d.page_content == "x")
    assert x.metadata["fusion"]["retrievers"]["dense"]["rank"] == 1


def test_alignment_by_id_and_by_text() -> None:
    # One side has ids (like FAISS), the other none (like BM25Retriever): matched by text.
    a = [Document("same text", id="uuid-1"), Document("other", id="uuid-2")]
    b = [Document("same text"), Document("third")]
    out = scripted(a, [1.0, 0.5], b, [2.0, 1.0], k=10).invoke("q")
    assert [d.page_content for d in out].count("same text") == 1
    same = next(d for d in out if d.page_content == "same text")
    assert same.id == "uuid-1"
    assert same.metadata["fusion"]["retrievers"]["bm25"]["rank"] == 1
    # Different ids with identical text stay distinct documents.
    c = [Document("dup", id="1")]
    d = [Document("dup", id="2")]
    assert len(scripted(c, [1.0], d, [1.0], k=10).invoke("q")) == 2


def test_id_key() -> None:
    a = [Document("v1 text", metadata={"doc": "A"})]
    b = [Document("v2 text, reformatted", metadata={"doc": "A"})]
    out = scripted(a, [1.0], b, [1.0], k=10, id_key="doc").invoke("q")
    assert len(out) == 1


def test_complete_scoring_uses_real_scores() -> None:
    a = docs("a1", "a2")
    b = docs("b1")
    dense = ScriptedSource(a, [0.9, 0.1], all_scores={"a1": 0.9, "a2": 0.1, "b1": 0.85})
    bm25 = ScriptedSource(b, [5.0], all_scores={"b1": 5.0, "a1": 4.0, "a2": 0.0})
    r = FusionRetriever(retrievers=[dense, bm25], names=["dense", "bm25"], k=3)
    out = {d.page_content: d.metadata["fusion"] for d in r.invoke("q")}
    assert out["b1"]["retrievers"]["dense"]["raw"] == pytest.approx(0.85)
    assert out["b1"]["retrievers"]["dense"]["rank"] is None  # not found by dense, but scored
    assert out["a1"]["retrievers"]["bm25"]["raw"] == pytest.approx(4.0)
    off = FusionRetriever(
        retrievers=[dense, bm25], names=["dense", "bm25"], k=3, complete_scoring=False
    )
    assert off.invoke("q")[0].metadata["fusion"]["retrievers"]["dense"] is not None


def test_max_per_source() -> None:
    a = [Document(f"a{i}", metadata={"source": "big.pdf"}) for i in range(5)]
    b = [Document("b", metadata={"source": "small.pdf"})]
    r = scripted(a, [5, 4, 3, 2, 1], b, [0.5], k=3, max_per_source=2, complete_scoring=False)
    out = r.invoke("q")
    assert [d.metadata["source"] for d in out].count("big.pdf") == 2
    assert len(out) == 3


def test_n_retrievers_with_weights() -> None:
    s1 = ScriptedSource(docs("x", "y"), [2.0, 1.0])
    s2 = ScriptedSource(docs("y", "x"), [2.0, 1.0])
    s3 = ScriptedSource(docs("z", "y"), None)  # rank-only
    r = FusionRetriever(retrievers=[s1, s2, s3], weights=[1.0, 1.0, 1.0], k=3)
    assert r.names == ["scripted", "scripted_2", "scripted_3"]
    assert r.invoke("q")[0].page_content == "y"
    with pytest.raises(ValueError, match="alpha applies to exactly two"):
        r.invoke("q", alpha=0.3)


def test_filters_are_passed_to_sources_that_accept_them() -> None:
    s1 = ScriptedSource(docs("x"), [1.0], supports_filter=True)
    s2 = ScriptedSource(docs("y"), [1.0], supports_filter=False)
    r = FusionRetriever(retrievers=[s1, s2])
    r.invoke("q", filter={"source": "x"})
    assert s1.calls[-1]["filter"] == {"source": "x"}
    assert s2.calls[-1]["filter"] is None


def test_vectorstore_retriever_keeps_its_search_kwargs() -> None:
    from langchain_core.vectorstores import InMemoryVectorStore

    from langchain_fusion import BM25Retriever
    from langchain_fusion.sources import VectorStoreSource, to_source

    metadatas = [{"source": f"s{i % 2}", "n": i} for i in range(len(TEXTS))]
    store = InMemoryVectorStore(BagOfWordsEmbedding())
    store.add_texts(TEXTS, metadatas=metadatas, ids=[f"d{i}" for i in range(len(TEXTS))])

    def even(doc: Document) -> bool:  # InMemoryVectorStore filters are callables on documents
        return doc.metadata["n"] % 2 == 0

    plain = to_source(store.as_retriever(search_kwargs={"k": 2}))
    assert type(plain) is VectorStoreSource and plain.search_kwargs == {}
    kept = to_source(store.as_retriever(search_kwargs={"k": 2, "filter": even}))
    assert isinstance(kept, VectorStoreSource) and kept.search_kwargs == {"filter": even}

    bm25 = BM25Retriever.from_texts(TEXTS, metadatas=metadatas)
    r = FusionRetriever(retrievers=[store.as_retriever(search_kwargs={"filter": even}), bm25], k=6)
    out = r.invoke("battery charge")
    dense_found = [d for d in out if d.metadata["fusion"]["retrievers"]["dense"] is not None]
    assert dense_found and all(d.metadata["n"] % 2 == 0 for d in dense_found)
    with pytest.raises(ValueError, match="pass one filter that says both"):
        kept.search("battery", 2, filter=lambda d: True)


def test_index_retriever_with_a_filter_is_refused_not_widened(retriever: FusionRetriever) -> None:
    index = retriever.index
    with pytest.raises(ValueError, match=r"FusionRetriever\(filter=\.\.\.\)"):
        FusionRetriever(
            retrievers=[index.as_retriever(search_kwargs={"filter": {"source": "s1"}}), index]
        )
    with pytest.warns(UserWarning, match=r"\['lambda_mult'\].*are ignored"):
        FusionRetriever(retrievers=[index.as_retriever(search_kwargs={"lambda_mult": 0.5}), index])


def test_filter_on_index_returns_k_matches(retriever: FusionRetriever) -> None:
    out = retriever.invoke("battery", k=3, filter={"source": "s1"})
    assert len(out) == 3
    assert {d.metadata["source"] for d in out} == {"s1"}


def test_query_without_known_terms_ranks_by_dense(retriever: FusionRetriever) -> None:
    q = "zzzunknownword"
    fused = [d.id for d in retriever.invoke(q, k=6)]
    dense = [d.id for d in retriever.invoke(q, k=6, alpha=1.0)]
    assert fused == dense


def test_retrievers_run_concurrently() -> None:
    slow1 = ScriptedSource(docs("x"), [1.0], delay=0.3)
    slow2 = ScriptedSource(docs("y"), [1.0], delay=0.3)
    r = FusionRetriever(retrievers=[slow1, slow2])
    r.invoke("warm up")
    t0 = time.perf_counter()
    r.invoke("q")
    assert time.perf_counter() - t0 < 0.55

    async def run() -> float:
        t0 = time.perf_counter()
        await r.ainvoke("q")
        return time.perf_counter() - t0

    assert asyncio.run(run()) < 0.55


def test_batch_and_async(retriever: FusionRetriever) -> None:
    sync = retriever.batch(["battery cold", "warranty"])
    assert [len(x) for x in sync] == [4, 4]

    async def run() -> list[list[Document]]:
        return await retriever.abatch(["battery cold", "warranty"])

    async_out = asyncio.run(run())
    assert [[d.id for d in x] for x in async_out] == [[d.id for d in x] for x in sync]
    assert asyncio.run(retriever.ainvoke("warranty", k=2))[0].id == "d2"


def test_explain_table(retriever: FusionRetriever) -> None:
    text = retriever.explain("E-217", k=2)
    assert "dense (raw/norm/rank)" in text and "E-217" in text


def test_explain_table_names_file_and_page() -> None:
    docs = [
        Document(
            "error E-217: battery too cold", id="a", metadata={"source": "/m/manual.pdf", "page": 4}
        ),
        Document("warranty lasts ten years", id="b", metadata={"source": "C:\\docs\\faq.md"}),
        Document("reset the BMS", id="c"),
    ]
    retriever = FusionRetriever.from_documents(docs, BagOfWordsEmbedding(), k=3)
    lines = retriever.explain("E-217 battery warranty").splitlines()
    assert lines[0].split()[-2:] == ["source", "text"]
    assert "manual.pdf, p. 4" in next(v for v in lines[1:] if "E-217" in v)
    assert "faq.md" in next(v for v in lines[1:] if "warranty" in v)
    assert "  -  " in next(v for v in lines[1:] if "reset" in v)


def test_gather_then_fuse_pool_matches_invoke(retriever: FusionRetriever) -> None:
    pool = retriever.gather("battery winter")
    for alpha in (0.0, 0.3, 1.0):
        res = retriever.fuse_pool(pool, alpha=alpha)
        ids = [pool.keys[i][3:] for i in res.order[:4]]
        assert ids == [d.id for d in retriever.invoke("battery winter", alpha=alpha)]


# ---------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be an integer >= 1"),
        ({"k": -3}, "k must be an integer >= 1"),
        ({"alpha": 1.5}, r"alpha must be in \[0, 1\]"),
        ({"alpha": -0.1}, r"alpha must be in \[0, 1\]"),
        ({"method": "magic"}, "method must be one of"),
        ({"normalization": "l2"}, "normalization must be one of"),
        ({"weights": [1.0]}, "weights"),
        ({"fetch_k": 0}, "fetch_k must be an integer >= 1"),
        ({"colour": "red"}, "unknown option"),
    ],
)
def test_bad_call_options(retriever: FusionRetriever, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        retriever.invoke("battery", **kwargs)


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query(retriever: FusionRetriever, query: str) -> None:
    with pytest.raises(ValueError, match="query must be a non-empty string"):
        retriever.invoke(query)


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="alpha must be in"):
        FusionRetriever.from_texts(["a"], BagOfWordsEmbedding(), alpha=2)
    with pytest.raises(ValueError, match="documents is empty"):
        FusionRetriever.from_documents([], BagOfWordsEmbedding())
    with pytest.raises(ValueError, match="needs retrievers"):
        FusionRetriever()
    with pytest.raises(ValueError, match="both vectorstore and keyword_retriever"):
        FusionRetriever(vectorstore=ScriptedSource([], []))
    with pytest.raises(TypeError, match="VectorStore, a BaseRetriever"):
        FusionRetriever(retrievers=[object(), object()])


def test_unicode_and_emoji() -> None:
    texts = ["Café crème brûlée 🍮 recette", "東京の天気は晴れ", "plain english text", ""]
    r = FusionRetriever.from_texts(texts, BagOfWordsEmbedding(), k=2)
    assert r.invoke("brûlée 🍮")[0].page_content == texts[0]
    assert r.invoke("東京の天気は晴れ")[0].page_content == texts[1]
    assert len(r.invoke("🍮")) == 2


def test_scores_are_finite_numbers(retriever: FusionRetriever) -> None:
    for d in retriever.invoke("the", k=6):
        assert np.isfinite(d.metadata["fusion"]["score"])


def test_model_copy_and_nesting_share_no_broken_state(retriever: FusionRetriever) -> None:
    copy_ = retriever.model_copy(update={"k": 2})
    assert len(copy_.invoke("battery")) == 2
    del copy_
    import gc

    gc.collect()
    assert len(retriever.invoke("battery")) == 4
    # A FusionRetriever used as a source of another one runs without deadlock.
    outer = FusionRetriever(retrievers=[retriever, retriever.model_copy()], weights=[1, 1], k=3)
    assert len(outer.invoke("battery")) == 3


def test_complete_scoring_auto_uses_own_ranks_for_rrf() -> None:
    dense = ScriptedSource(
        docs("a1", "a2"), [0.9, 0.1], all_scores={"a1": 0.9, "a2": 0.1, "b1": 0.95}
    )
    bm25 = ScriptedSource(docs("b1"), [5.0], all_scores={"b1": 5.0, "a1": 0.0, "a2": 0.0})
    auto = FusionRetriever(retrievers=[dense, bm25], names=["dense", "bm25"], k=3, method="rrf")
    got = {d.page_content: d.metadata["fusion"]["score"] for d in auto.invoke("q")}
    assert got["b1"] == pytest.approx(0.5 / 61)  # dense did not return b1: no dense term
    forced = auto.model_copy(update={"complete_scoring": True})
    got = {d.page_content: d.metadata["fusion"]["score"] for d in forced.invoke("q")}
    assert got["b1"] == pytest.approx(0.5 / 61 + 0.5 / 61)  # b1 is dense's best by score


def test_pool_window_equals_a_smaller_gather(retriever: FusionRetriever) -> None:
    big = retriever.gather("battery charge cold winter", fetch_k=6)
    # fetch_k is at least k, so the smaller gather needs k=3 too
    small = retriever.model_copy(update={"k": 3}).gather("battery charge cold winter", fetch_k=3)
    cut = big.window(3)
    assert len(cut) > 2 and sorted(cut.keys) == sorted(small.keys)
    assert int(cut.found_rank.max()) <= 3
    order = [small.keys.index(key) for key in cut.keys]
    np.testing.assert_array_equal(cut.found_rank, small.found_rank[:, order])
    np.testing.assert_allclose(cut.raw, small.raw[:, order], atol=1e-6)


def test_a_document_deleted_between_search_and_load_is_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from langchain_fusion import HybridIndex

    index = HybridIndex(BagOfWordsEmbedding())
    index.add_texts(TEXTS, ids=[f"d{i}" for i in range(len(TEXTS))])
    r = FusionRetriever.from_index(index, k=3)
    before = [d.id for d in r.invoke("battery charge cold")]
    victim = before[0]
    search = HybridIndex.search_keyword

    def search_then_delete(self: HybridIndex, *args: object, **kwargs: object) -> object:
        found = search(self, *args, **kwargs)  # type: ignore[arg-type]
        if victim in self:  # another thread deletes it before the documents are loaded
            self.delete([victim])
        return found

    monkeypatch.setattr(HybridIndex, "search_keyword", search_then_delete)
    after = [d.id for d in r.invoke("battery charge cold")]
    assert victim not in after and len(after) == 3
    assert after[:2] == before[1:]


def test_constructor_rejects_ambiguous_or_misspelt_settings() -> None:
    from pydantic import ValidationError

    three = [ScriptedSource(docs("x"), [1.0]) for _ in range(3)]
    with pytest.raises(ValidationError, match="alpha applies to exactly two retrievers"):
        FusionRetriever(retrievers=three, alpha=0.2)
    two = three[:2]
    with pytest.raises(
        ValidationError, match=r"alpha \(two retrievers\) or weights=\[\.\.\.\], not both"
    ):
        FusionRetriever(retrievers=two, alpha=0.2, weights=[1.0, 2.0])
    with pytest.raises(ValidationError, match="alhpa"):
        FusionRetriever(retrievers=two, alhpa=0.3)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="not both"):
        FusionRetriever(retrievers=two).invoke("q", alpha=0.2, weights=[1.0, 1.0])


def test_max_per_source_does_not_group_documents_without_a_source() -> None:
    plain = [Document(page_content=f"doc {i}") for i in range(4)]
    r = FusionRetriever(
        retrievers=[ScriptedSource(plain, [4.0, 3.0, 2.0, 1.0]), ScriptedSource([], [])],
        k=4,
        max_per_source=1,
    )
    assert len(r.invoke("q")) == 4


def test_wrapped_stores_are_kept_and_an_index_as_keyword_side_is_bm25(
    retriever: FusionRetriever,
) -> None:
    index = retriever.index
    r = FusionRetriever(vectorstore=index, keyword_retriever=index)
    assert r.vectorstore is index and r.keyword_retriever is index
    assert [type(s).__name__ for s in r.sources] == ["HybridDenseSource", "HybridKeywordSource"]
    top = r.invoke("battery charge", k=1)[0]
    assert top.id is not None
    bm25 = index.score_keyword("battery charge", [top.id])
    assert top.metadata["fusion"]["retrievers"]["bm25"]["raw"] == pytest.approx(float(bm25[0]))


def test_filters_reach_rank_only_and_nested_retrievers(retriever: FusionRetriever) -> None:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.retrievers import BaseRetriever

    class Everything(BaseRetriever):  # rank-only and knows nothing of filters
        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun
        ) -> list[Document]:
            return [Document(t, id=f"d{i}", metadata={"n": i}) for i, t in enumerate(TEXTS)]

    mixed = FusionRetriever(retrievers=[retriever.index, Everything()], weights=[1, 1], k=6)
    out = mixed.invoke("battery", filter={"n": {"$in": [1, 3]}})
    assert out and all(d.metadata["n"] in (1, 3) for d in out)

    nested = FusionRetriever(retrievers=[retriever, Everything()], weights=[1, 1], k=6)
    out = nested.invoke("battery", filter={"n": {"$gte": 4}})
    assert out and all(d.metadata["n"] >= 4 for d in out)


def test_own_bm25_fuses_with_an_id_less_store_like_the_community_one() -> None:
    from langchain_core.vectorstores import InMemoryVectorStore

    from langchain_fusion import BM25Retriever

    store = InMemoryVectorStore.from_texts(TEXTS, BagOfWordsEmbedding())  # invents uuids
    bm25 = BM25Retriever.from_texts(TEXTS)  # ids made from the content
    r = FusionRetriever(vectorstore=store, keyword_retriever=bm25, k=6)
    out = r.invoke("battery charge cold")
    assert len({d.page_content for d in out}) == len(out) == 6  # each text once
    both = out[0].metadata["fusion"]["retrievers"]
    assert both["dense"] is not None and both["bm25"] is not None
    explicit = BM25Retriever.from_texts(TEXTS, ids=[f"u{i}" for i in range(len(TEXTS))])
    r = FusionRetriever(vectorstore=store, keyword_retriever=explicit, k=6)
    assert len(r.invoke("battery charge cold", k=12)) > 6  # users' own ids are kept apart
