"""The real ``ChatOpenAI`` client inside the QA chain, against a scripted server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel

from langchain_fusion.qa import LLMError, build_qa_chain
from langchain_fusion.verify import UNVERIFIED_QUOTE_MARKER
from tests.fakes import FixedRetriever
from tests.openai_stub_server import Reply, StubOpenAIServer

langchain_openai = pytest.importorskip("langchain_openai")

# pytest-socket: any connection to a host other than 127.0.0.1 fails the test.
pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

DOCS = [
    Document(
        "Explainable AI (XAI) aims to make AI systems more transparent and understandable.",
        metadata={"file_name": "AI_Information.pdf", "page": 4, "fusion": {"score": 0.83}},
    ),
    Document(
        "Transparency and explainability are essential for building trust in AI systems.",
        metadata={"file_name": "AI_Information.pdf", "page": 10},
    ),
]
QUESTION = "What is explainable AI and why does it matter?"
REPLY = (
    'Explainable AI "aims to make AI systems more transparent and understandable" [1]; this '
    'matters because "explainable models are always more accurate than black boxes" [1], and '
    "transparency builds trust [2][9]."
)
CLEAN = (
    'Explainable AI "aims to make AI systems more transparent and understandable" [1]; this '
    f"matters because {UNVERIFIED_QUOTE_MARKER} [1], and transparency builds trust [2]."
)


@pytest.fixture(autouse=True)
def _local_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy from the environment would route 127.0.0.1 elsewhere; keep the traffic local.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE", "OPENAI_ORGANIZATION"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def server() -> Iterator[StubOpenAIServer]:
    with StubOpenAIServer([REPLY]) as stub:
        yield stub


def chat_model(server: StubOpenAIServer, **kwargs: Any) -> BaseChatModel:
    model = langchain_openai.ChatOpenAI(
        model="gpt-4o-mini", base_url=server.base_url, api_key="test", max_retries=0, **kwargs
    )
    assert model.openai_api_base.startswith("http://127.0.0.1:")
    assert str(model.root_client.base_url).startswith("http://127.0.0.1:")
    assert isinstance(model, BaseChatModel)
    return model


def user_message(body: dict[str, object]) -> str:
    messages = body["messages"]
    assert isinstance(messages, list)
    assert [m["role"] for m in messages] == ["system", "user"]
    content = messages[1]["content"]
    assert isinstance(content, str)
    return content


def test_invoke_sends_numbered_sources_and_verifies_the_reply(server: StubOpenAIServer) -> None:
    retriever = FixedRetriever(docs=DOCS)
    chain = build_qa_chain(retriever, chat_model(server))
    result = chain.invoke(QUESTION)

    assert server.paths == ["/v1/chat/completions"]
    (body,) = server.requests
    assert body["model"] == "gpt-4o-mini"
    assert not body.get("stream")
    prompt = user_message(body)
    assert "[1] (AI_Information.pdf, p. 4) Explainable AI (XAI) aims" in prompt
    assert "[2] (AI_Information.pdf, p. 10) Transparency and explainability" in prompt
    assert prompt.endswith(f"Question: {QUESTION}")
    assert "cite" in str(body["messages"][0]["content"]).lower()

    assert result.mode == "generated"
    assert result.llm == "gpt-4o-mini"
    assert result.raw_answer == REPLY
    assert result.answer == CLEAN
    assert result.verification is not None
    assert result.verification.removed_citations == [9]
    assert result.verification.unverified_quotes == [
        "explainable models are always more accurate than black boxes"
    ]
    assert result.sources == DOCS
    assert retriever.queries == [QUESTION]


def test_streaming_yields_tokens_then_the_verified_result(server: StubOpenAIServer) -> None:
    retriever = FixedRetriever(docs=DOCS)
    chain = build_qa_chain(retriever, chat_model(server))
    events = list(chain.stream_result(QUESTION))

    (body,) = server.requests
    assert body["stream"] is True
    assert "[1] (AI_Information.pdf, p. 4)" in user_message(body)
    kinds = [e.kind for e in events]
    assert kinds[0] == "sources" and kinds[-1] == "result"
    tokens = [e.token for e in events if e.kind == "token"]
    assert len(tokens) == len(REPLY.split(" "))  # one SSE chunk per word
    assert "".join(tokens) == REPLY
    result = events[-1].result
    assert result is not None
    assert result.answer == CLEAN
    assert result.verification is not None and result.verification.removed_citations == [9]
    assert retriever.queries == [QUESTION]  # retrieval ran once


async def test_async_streaming(server: StubOpenAIServer) -> None:
    chain = build_qa_chain(FixedRetriever(docs=DOCS), chat_model(server))
    tokens = [t async for t in chain.astream(QUESTION)]
    assert len(tokens) > 10
    assert "".join(tokens) == REPLY
    assert server.requests[0]["stream"] is True


def test_default_model_from_environment(
    server: StubOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_BASE", server.base_url)
    chain = build_qa_chain(FixedRetriever(docs=DOCS))  # llm=None: gpt-4o-mini from the env
    assert chain.model_name == "gpt-4o-mini"
    assert str(chain.llm.root_client.base_url).startswith("http://127.0.0.1:")  # type: ignore[union-attr]
    chain.llm.max_retries = 0  # type: ignore[union-attr]
    result = chain.invoke(QUESTION)
    assert server.requests[0]["model"] == "gpt-4o-mini"
    assert server.requests[0]["temperature"] == 0
    assert result.answer == CLEAN


def test_server_error_becomes_llm_error_with_sources() -> None:
    with StubOpenAIServer([Reply(status=500)]) as server:
        chain = build_qa_chain(FixedRetriever(docs=DOCS), chat_model(server))
        with pytest.raises(LLMError) as info:
            chain.invoke(QUESTION)
    # langchain-openai re-raises the client's errors as its own OpenAIAPIError.
    assert str(info.value) == (
        "chat model 'gpt-4o-mini' failed: OpenAIAPIError: Error code: 500 - scripted error 500"
    )
    assert info.value.sources == DOCS
    assert len(server.requests) == 1  # max_retries=0


def test_timeout_becomes_llm_error() -> None:
    with StubOpenAIServer([Reply(REPLY, delay=1.5)]) as server:
        chain = build_qa_chain(FixedRetriever(docs=DOCS), chat_model(server, timeout=0.3))
        with pytest.raises(LLMError, match=r"failed: \w*TimeoutError: Request timed out") as info:
            chain.invoke(QUESTION)
    assert info.value.sources == DOCS


def test_connections_beyond_localhost_are_blocked() -> None:
    import socket

    from pytest_socket import SocketConnectBlockedError

    with pytest.warns(UserWarning, match="192.0.2.1"), pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("192.0.2.1", 443), timeout=0.1)  # TEST-NET-1, never routed
