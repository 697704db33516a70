"""Wrapping what LangChain users have today: langchain_community FAISS and BM25Retriever."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from langchain_core.documents import Document

from langchain_fusion import CommunitySunsetWarning, FusionRetriever
from langchain_fusion.sources import CommunityBM25Source, CommunityFAISSSource, to_source
from tests.fakes import BagOfWordsEmbedding

pytest.importorskip("langchain_community")
pytest.importorskip("rank_bm25")

from langchain_community.retrievers import BM25Retriever
from langchain_community.vectorstores import FAISS

TEXTS = [
    "Error E-217 means the battery is too cold to charge.",
    "In winter, keep the battery above freezing so it can charge.",
    "The warranty covers ten years or 6000 cycles.",
    "Run lumenctl --reset-bms to reset the battery management system.",
    "Firmware 4.2.1 fixed the export limit bug.",
]


@pytest.fixture
def stores() -> tuple[FAISS, BM25Retriever]:
    docs = [Document(t, metadata={"n": i}) for i, t in enumerate(TEXTS)]
    return FAISS.from_documents(docs, BagOfWordsEmbedding()), BM25Retriever.from_documents(docs)


def test_wraps_community_stores_and_warns(stores: tuple[FAISS, BM25Retriever]) -> None:
    faiss, bm25 = stores
    import langchain_fusion.sources as sources

    sources._warned.clear()
    with pytest.warns(CommunitySunsetWarning, match="being sunset"):
        r = FusionRetriever(vectorstore=faiss, keyword_retriever=bm25, k=3)
    assert isinstance(r.sources[0], CommunityFAISSSource)
    assert isinstance(r.sources[1], CommunityBM25Source)
    out = r.invoke("E-217 battery")
    assert out[0].page_content == TEXTS[0]
    # Same text from both sides (FAISS gives uuids, BM25Retriever none) is one candidate.
    assert len({d.page_content for d in r.invoke("battery", k=5)}) == len(r.invoke("battery", k=5))


def test_community_faiss_scores_are_exact_cosines(stores: tuple[FAISS, BM25Retriever]) -> None:
    faiss, _ = stores
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = to_source(faiss)
    cand = src.search("battery charge", 5)
    emb = BagOfWordsEmbedding()
    q = np.array(emb.embed_query("battery charge"))
    expected = [float(np.dot(q, emb.embed_query(d.page_content))) for d in cand.documents]
    np.testing.assert_allclose(cand.scores, expected, atol=1e-6)
    # complete scoring of a document given without id (as BM25Retriever returns it)
    assert cand.scorer is not None
    got = cand.scorer([Document(TEXTS[2]), Document("not in the store")])
    assert got[0] == pytest.approx(float(np.dot(q, emb.embed_query(TEXTS[2]))), abs=1e-6)
    assert np.isnan(got[1])


def test_community_bm25_scores_match_rank_bm25(stores: tuple[FAISS, BM25Retriever]) -> None:
    _, bm25 = stores
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = to_source(bm25)
    cand = src.search("battery charge", 3)
    all_scores = bm25.vectorizer.get_scores(["battery", "charge"])
    assert list(cand.scores) == sorted(all_scores, reverse=True)[:3]
    assert cand.documents[0].page_content in TEXTS
    flt = src.search("battery", 5, filter={"n": 1})
    assert [d.metadata["n"] for d in flt.documents] == [1]


def test_ensemble_style_retriever_list(stores: tuple[FAISS, BM25Retriever]) -> None:
    faiss, bm25 = stores
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = FusionRetriever(
            retrievers=[faiss.as_retriever(), bm25], weights=[0.5, 0.5], method="rrf", k=2
        )
    assert len(r.invoke("warranty cycles")) == 2
    assert r.invoke("warranty cycles")[0].page_content == TEXTS[2]


def test_faiss_scores_stay_right_after_delete_then_add() -> None:
    embedding = BagOfWordsEmbedding()
    docs = [Document(t, id=f"d{i}") for i, t in enumerate(TEXTS)]
    faiss = FAISS.from_documents(docs, embedding)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = to_source(faiss)

    def cosines() -> dict[str | None, float]:
        c = src.search("battery cold charge", 5)
        return {d.id: float(s) for d, s in zip(c.documents, np.asarray(c.scores), strict=True)}

    cosines()  # builds the position cache
    faiss.delete(["d0"])  # positions shift...
    faiss.add_documents([Document(TEXTS[0], id="d0")])  # ...and the size is the same again
    q = np.array(embedding.embed_query("battery cold charge"))
    for doc_id, score in cosines().items():
        v = np.array(embedding.embed_query(TEXTS[int(str(doc_id)[1:])]))
        assert score == pytest.approx(float(q @ v / np.linalg.norm(q) / np.linalg.norm(v)))
