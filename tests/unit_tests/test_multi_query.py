"""MultiQueryFusionRetriever (RAG-Fusion) with scripted chat models and a real ChatOpenAI."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from langchain_fusion import FusionRetriever
from langchain_fusion.multi_query import MultiQueryFusionRetriever, parse_variants
from tests.fakes import BagOfWordsEmbedding
from tests.openai_stub_server import Reply, StubOpenAIServer

TEXTS = {
    "mi": "myocardial infarction presents with chest pain and sweating",
    "ha": "heart attack warning signs include chest pain",
    "stroke": "stroke symptoms: face drooping, arm weakness",
    "tax": "income tax returns are due in april",
    "flu": "influenza causes fever and muscle aches",
    "diet": "a diet low in salt lowers blood pressure",
}
QUESTION = "what are the signs of a heart attack"


def base(**kwargs: Any) -> FusionRetriever:
    return FusionRetriever.from_texts(
        list(TEXTS.values()), BagOfWordsEmbedding(64), ids=list(TEXTS), **kwargs
    )


def scripted(*answers: str) -> GenericFakeChatModel:
    """A real chat model class answering the scripted texts in order (fails when exhausted)."""
    return GenericFakeChatModel(messages=iter([AIMessage(a) for a in answers]))


class SlowChat(BaseChatModel):
    """A chat model that sleeps before answering (timeouts)."""

    delay: float = 1.0
    answer: str = "x"

    @property
    def _llm_type(self) -> str:
        return "slow"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        time.sleep(self.delay)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.answer))])


class FailingChat(SlowChat):
    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        raise ConnectionError("provider is down")


def ids(docs: list[Document]) -> list[str | None]:
    return [d.id for d in docs]


def test_variants_are_retrieved_and_fused_with_contributions() -> None:
    llm = scripted("myocardial infarction symptoms\nchest pain sweating")
    r = MultiQueryFusionRetriever(retriever=base(k=3), llm=llm, num_queries=2)
    docs = r.invoke(QUESTION)
    assert len(docs) == 3
    info = docs[0].metadata["fusion"]
    assert info["queries"] == [QUESTION, "myocardial infarction symptoms", "chest pain sweating"]
    assert info["query_weights"] == [1.0, 1.0, 1.0]
    assert info["skipped"] == []
    # the variants bring in the document that shares no word with the question
    assert "mi" in ids(docs)
    for d in docs:
        lists = d.metadata["fusion"]["lists"]
        assert set(lists) == {f"{s}@q{q}" for s in ("dense", "bm25") for q in range(3)}
        total = sum(c["contribution"] for c in lists.values() if c is not None)
        assert d.metadata["fusion"]["score"] == pytest.approx(total)
        for c in lists.values():
            if c is not None and c["rank"] is not None:
                assert c["contribution"] == pytest.approx(c["weight"] / (60 + c["rank"]))
    scores = [d.metadata["fusion"]["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)


def test_variants_are_cached_per_question() -> None:
    llm = scripted("chest pain\nheart symptoms")  # a second model call would fail
    r = MultiQueryFusionRetriever(retriever=base(), llm=llm, num_queries=2)
    first = r.invoke(QUESTION)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = r.invoke(QUESTION)
    assert ids(first) == ids(second)
    assert second[0].metadata["fusion"]["queries"][1:] == ["chest pain", "heart symptoms"]


def test_no_model_runs_the_original_only_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    r = MultiQueryFusionRetriever(retriever=base(k=4), llm=None)
    assert r.model is None
    with pytest.warns(UserWarning, match="no chat model"):
        docs = r.invoke(QUESTION)
    info = docs[0].metadata["fusion"]
    assert info["queries"] == [QUESTION]
    assert "no chat model" in info["skipped"][0]
    # with one query, the result is the wrapped retriever's own RRF ranking
    plain = base(k=4, method="rrf").invoke(QUESTION)
    assert ids(docs) == ids(plain)
    assert [d.metadata["fusion"]["score"] for d in docs] == pytest.approx(
        [d.metadata["fusion"]["score"] for d in plain]
    )


def test_original_weight_bounds_variant_weight() -> None:
    with pytest.raises(ValueError, match="must not exceed original_weight"):
        MultiQueryFusionRetriever(retriever=base(), llm=False, variant_weight=2.0)
    r = MultiQueryFusionRetriever(
        retriever=base(k=6), llm=scripted("tax returns april"), num_queries=1, variant_weight=0.5
    )
    docs = r.invoke(QUESTION)
    assert docs[0].metadata["fusion"]["query_weights"] == [1.0, 0.5]
    lists = next(d for d in docs if d.id == "tax").metadata["fusion"]["lists"]
    assert lists["bm25@q1"]["weight"] == pytest.approx(0.25)  # 0.5 (variant) x 0.5 (alpha)


@pytest.mark.parametrize("n", [0, -1, True, 1.5])
def test_bad_num_queries(n: Any) -> None:
    with pytest.raises(ValueError, match="num_queries must be an integer >= 1"):
        MultiQueryFusionRetriever(retriever=base(), llm=False, num_queries=n)


def test_failing_model_warns_and_runs_the_original() -> None:
    r = MultiQueryFusionRetriever(retriever=base(k=2), llm=FailingChat())
    with pytest.warns(UserWarning, match=r"failed \(ConnectionError: provider is down\)"):
        docs = r.invoke(QUESTION)
    assert len(docs) == 2
    assert docs[0].metadata["fusion"]["queries"] == [QUESTION]
    assert "ConnectionError" in docs[0].metadata["fusion"]["skipped"][0]
    strict = MultiQueryFusionRetriever(retriever=base(), llm=FailingChat(), on_error="raise")
    with pytest.raises(RuntimeError, match="provider is down"):
        strict.invoke(QUESTION)


def test_timeout_warns_and_runs_the_original() -> None:
    r = MultiQueryFusionRetriever(retriever=base(k=2), llm=SlowChat(delay=2.0), timeout=0.2)
    t0 = time.perf_counter()
    with pytest.warns(UserWarning, match="did not answer within 0.2 s"):
        docs = r.invoke(QUESTION)
    assert time.perf_counter() - t0 < 1.5
    assert docs[0].metadata["fusion"]["queries"] == [QUESTION]


def test_garbage_and_duplicates_are_skipped_with_a_warning() -> None:
    r = MultiQueryFusionRetriever(retriever=base(), llm=scripted("---\n\n***\n"), num_queries=2)
    with pytest.warns(UserWarning, match="0 usable variant"):
        docs = r.invoke(QUESTION)
    assert docs[0].metadata["fusion"]["queries"] == [QUESTION]
    dupes = "1. What are the signs of a heart attack?\n2. chest pain\n3. Chest pain."
    r = MultiQueryFusionRetriever(retriever=base(), llm=scripted(dupes), num_queries=2)
    with pytest.warns(UserWarning, match="1 usable variant"):
        docs = r.invoke(QUESTION)
    info = docs[0].metadata["fusion"]
    assert info["queries"] == [QUESTION, "chest pain"]
    assert len(info["skipped"]) == 2 and all("duplicate" in s for s in info["skipped"])


def test_parse_variants_strips_numbering_and_caps_n() -> None:
    v = parse_variants('1) "alpha beta"\n- gamma\n* delta\n4. epsilon', "q", 3)
    assert v.variants == ["alpha beta", "gamma", "delta"]
    assert v.skipped == ["extra variant 'epsilon' (num_queries=3)"]


def test_convex_method_returns_exactly_k() -> None:
    llm = scripted("chest pain\nflu fever")
    r = MultiQueryFusionRetriever(retriever=base(), llm=llm, num_queries=2, method="convex", k=5)
    docs = r.invoke(QUESTION)
    assert len(docs) == 5
    assert docs[0].metadata["fusion"]["method"] == "convex"
    assert len({d.id for d in docs}) == 5


def test_per_call_k_filter_and_explain() -> None:
    docs = [
        Document(t, id=i, metadata={"topic": "tax" if i == "tax" else "health"})
        for i, t in TEXTS.items()
    ]
    fr = FusionRetriever.from_documents(docs, BagOfWordsEmbedding(64))
    r = MultiQueryFusionRetriever(retriever=fr, llm=scripted("chest pain"), num_queries=1)
    out = r.invoke(QUESTION, k=5, filter={"topic": "health"})
    assert len(out) == 5 and "tax" not in ids(out)
    table = r.explain(QUESTION, k=2)
    lines = table.splitlines()
    assert lines[0] == f"queries: q0 = {QUESTION!r} (weight 1), q1 = 'chest pain' (weight 1)"
    assert "dense@q0" in lines[1] and "bm25@q1" in lines[1]
    assert len(lines) == 4
    with pytest.raises(ValueError, match="unknown option"):
        r.invoke(QUESTION, alpha=0.3)


async def test_async_matches_sync() -> None:
    r1 = MultiQueryFusionRetriever(retriever=base(), llm=scripted("chest pain"), num_queries=1)
    r2 = MultiQueryFusionRetriever(retriever=base(), llm=scripted("chest pain"), num_queries=1)
    assert ids(await r1.ainvoke(QUESTION)) == ids(r2.invoke(QUESTION))


async def test_async_timeout() -> None:
    r = MultiQueryFusionRetriever(retriever=base(), llm=SlowChat(delay=2.0), timeout=0.2)
    with pytest.warns(UserWarning, match="did not answer"):
        docs = await r.ainvoke(QUESTION)
    assert docs[0].metadata["fusion"]["queries"] == [QUESTION]


def test_with_a_reranker_on_the_wrapped_retriever() -> None:
    def prefer_tax(query: str, texts: list[str]) -> list[float]:
        return [1.0 if "tax" in t else 0.0 for t in texts]

    r = MultiQueryFusionRetriever(
        retriever=base(k=2, reranker=prefer_tax), llm=scripted("chest pain"), num_queries=1
    )
    docs = r.invoke(QUESTION)
    assert len(docs) == 2 and docs[0].id == "tax"
    assert docs[0].metadata["fusion"]["rerank"]["score"] == 1.0
    assert "rerank" in r.explain(QUESTION).splitlines()[1]
    plain = MultiQueryFusionRetriever(
        retriever=base(k=2), llm=scripted("chest pain"), num_queries=1
    )
    kept = MultiQueryFusionRetriever(
        retriever=base(k=2, reranker=prefer_tax, rerank_weight=0.0),
        llm=scripted("chest pain"),
        num_queries=1,
    )
    assert [d.id for d in kept.invoke(QUESTION)] == [d.id for d in plain.invoke(QUESTION)]
    assert all("blended" in d.metadata["fusion"]["rerank"] for d in kept.invoke(QUESTION))


def test_synonym_notes_and_max_per_source() -> None:
    from langchain_fusion import HybridIndex
    from langchain_fusion.synonyms import with_synonyms

    docs = [
        Document(t, id=i, metadata={"source": "a" if i in ("mi", "ha", "stroke") else i})
        for i, t in TEXTS.items()
    ]
    index = HybridIndex.from_documents(docs, BagOfWordsEmbedding(64))
    fr = with_synonyms(index, {"heart attack": ["myocardial infarction"]}, max_per_source=1)
    r = MultiQueryFusionRetriever(retriever=fr, llm=scripted("stroke signs"), num_queries=1)
    out = r.invoke(QUESTION, k=4)
    sources = [d.metadata["source"] for d in out]
    assert sources.count("a") == 1 and len(out) == 4
    notes = out[0].metadata["fusion"]["query_notes"]
    assert notes == {"bm25@q0": "synonyms heart attack -> myocardial infarction (weight 0.3)"}
    assert "bm25@q0 query: synonyms heart attack" in r.explain(QUESTION)


# ---------------------------------------------------------------- the real ChatOpenAI client

langchain_openai = pytest.importorskip("langchain_openai")


@pytest.fixture
def local_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE", "OPENAI_ORGANIZATION"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def server(local_only: None) -> Iterator[StubOpenAIServer]:
    with StubOpenAIServer(
        ["myocardial infarction symptoms\nchest pain sweating", Reply(status=500)]
    ) as stub:
        yield stub


def chat(server: StubOpenAIServer, **kwargs: Any) -> Any:
    return langchain_openai.ChatOpenAI(
        model="gpt-4o-mini", base_url=server.base_url, api_key="test", max_retries=0, **kwargs
    )


@pytest.mark.allow_hosts(["127.0.0.1"])
def test_real_chat_openai_writes_the_variants(server: StubOpenAIServer) -> None:
    r = MultiQueryFusionRetriever(retriever=base(k=3), llm=chat(server), num_queries=2)
    docs = r.invoke(QUESTION)
    assert docs[0].metadata["fusion"]["queries"][1:] == [
        "myocardial infarction symptoms",
        "chest pain sweating",
    ]
    assert "mi" in ids(docs)
    body = server.requests[0]
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][1]["content"] == QUESTION
    assert "Write 2 different search queries" in body["messages"][0]["content"]
    r.invoke(QUESTION)  # cached: no second request
    assert len(server.requests) == 1
    # the next request gets HTTP 500: a warning, the original question alone
    with pytest.warns(UserWarning, match="Error code: 500"):
        docs = r.invoke("chest pain")
    assert docs[0].metadata["fusion"]["queries"] == ["chest pain"]


@pytest.mark.allow_hosts(["127.0.0.1"])
async def test_real_chat_openai_async_and_timeout(local_only: None) -> None:
    with StubOpenAIServer(["chest pain", Reply("late", delay=2.0)]) as stub:
        r = MultiQueryFusionRetriever(retriever=base(), llm=chat(stub), num_queries=1)
        docs = await r.ainvoke(QUESTION)
        assert docs[0].metadata["fusion"]["queries"] == [QUESTION, "chest pain"]
        slow = MultiQueryFusionRetriever(
            retriever=base(), llm=chat(stub), num_queries=1, timeout=0.3
        )
        with pytest.warns(UserWarning, match="did not answer within 0.3 s"):
            docs = slow.invoke("stroke")
        assert docs[0].metadata["fusion"]["queries"] == ["stroke"]


def test_default_model_is_chat_openai_when_a_key_is_set(
    monkeypatch: pytest.MonkeyPatch, local_only: None
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    r = MultiQueryFusionRetriever(retriever=base())
    assert type(r.model).__name__ == "ChatOpenAI"


def test_source_weights_follow_the_wrapped_retriever() -> None:
    r = MultiQueryFusionRetriever(retriever=base(alpha=0.8), llm=False)
    assert np.allclose(r._source_weights(), [0.8, 0.2])
