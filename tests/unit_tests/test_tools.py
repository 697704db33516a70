from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tools import BaseTool
from pydantic import Field

from langchain_fusion.tools import DEFAULT_TOOL_DESCRIPTION, create_fusion_tool
from langchain_fusion.verify import verify_answer
from tests.fakes import FixedRetriever

DOCS = [
    Document(
        "Cobots are collaborative robots that work alongside humans in shared workspaces.",
        id="robots-3",
        metadata={
            "file_name": "AI_Information.pdf",
            "page": 5,
            "fusion": {"score": 0.91, "retrievers": {"dense": None, "bm25": None}},
        },
    ),
    Document(
        "Industrial robots handle welding, painting and assembly.",
        id="robots-1",
        metadata={"file_name": "AI_Information.pdf", "page": 5, "fusion": {"score": 0.42}},
    ),
]


class ScriptedToolCallingModel(BaseChatModel):
    """A chat model that plays a script: first a tool call, then an answer built from the
    tool's output (the last ToolMessage), recording what it was sent."""

    script: list[Callable[[list[BaseMessage]], AIMessage]]
    received: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted-tool-caller"

    def bind_tools(
        self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        self.bound_tools.extend(t.name for t in tools if isinstance(t, BaseTool))
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        step = self.script[len(self.received)]
        self.received.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=step(messages))])


def call_search(messages: list[BaseMessage]) -> AIMessage:
    return AIMessage(
        content="",
        tool_calls=[
            {"name": "search_documents", "args": {"query": "what is a cobot"}, "id": "call_1"}
        ],
    )


def answer_from_tool_output(messages: list[BaseMessage]) -> AIMessage:
    tool_output = next(m for m in reversed(messages) if isinstance(m, ToolMessage))
    first_source = str(tool_output.content).split("\n\n")[0]
    # Cite the first numbered passage and quote it, as the prompt asks.
    number = first_source.split("]")[0] + "]"
    quote = first_source.split(") ", 1)[1].rstrip(".")
    return AIMessage(content=f'A cobot is a collaborative robot: "{quote}" {number}.')


def run_agent(model: BaseChatModel, tool: BaseTool, question: str) -> list[BaseMessage]:
    """The classic tool-calling loop: model -> tools -> ToolMessages -> model, until no calls."""
    bound = model.bind_tools([tool])
    messages: list[BaseMessage] = [HumanMessage(question)]
    for _ in range(5):
        reply = bound.invoke(messages)
        assert isinstance(reply, AIMessage)
        messages.append(reply)
        if not reply.tool_calls:
            return messages
        for call in reply.tool_calls:
            assert call["name"] == tool.name
            result = tool.invoke({**call, "type": "tool_call"})
            assert isinstance(result, ToolMessage)
            messages.append(result)
    raise AssertionError("agent did not finish")


def test_agent_loop_calls_the_tool_and_cites_the_source() -> None:
    retriever = FixedRetriever(docs=DOCS)
    tool = create_fusion_tool(retriever)
    model = ScriptedToolCallingModel(script=[call_search, answer_from_tool_output])

    messages = run_agent(model, tool, "What is a cobot?")

    assert model.bound_tools == ["search_documents"]
    assert retriever.queries == ["what is a cobot"]
    tool_message = messages[2]
    assert isinstance(tool_message, ToolMessage)
    assert tool_message.tool_call_id == "call_1"
    assert tool_message.artifact == DOCS  # the documents travel with the message
    assert str(tool_message.content).startswith(
        "[1] (AI_Information.pdf, p. 5, score 0.910) Cobots are collaborative robots"
    )
    # The second model call saw the tool output.
    assert any(isinstance(m, ToolMessage) for m in model.received[1])
    final = messages[-1]
    assert final.content == (
        'A cobot is a collaborative robot: "Cobots are collaborative robots that work alongside '
        'humans in shared workspaces" [1].'
    )
    # And the answer survives verification against the tool's sources.
    assert verify_answer(str(final.content), tool_message.artifact).ok


def test_invoke_with_args_returns_the_formatted_sources() -> None:
    tool = create_fusion_tool(FixedRetriever(docs=DOCS))
    out = tool.invoke({"query": "cobot"})
    assert out == (
        "[1] (AI_Information.pdf, p. 5, score 0.910) Cobots are collaborative robots that work "
        "alongside humans in shared workspaces.\n\n"
        "[2] (AI_Information.pdf, p. 5, score 0.420) Industrial robots handle welding, painting "
        "and assembly."
    )


async def test_ainvoke() -> None:
    retriever = FixedRetriever(docs=DOCS)
    tool = create_fusion_tool(retriever, k=1)
    out = await tool.ainvoke({"query": "cobot"})
    assert out.startswith("[1] (AI_Information.pdf, p. 5, score 0.910) Cobots")
    assert "[2]" not in out
    assert retriever.queries == ["cobot"]
    message = await tool.ainvoke(
        {"type": "tool_call", "id": "c9", "name": tool.name, "args": {"query": "robots"}}
    )
    assert isinstance(message, ToolMessage) and message.artifact == DOCS[:1]


def test_schema_name_and_description() -> None:
    tool = create_fusion_tool(FixedRetriever(docs=DOCS), name="search_manuals")
    assert tool.name == "search_manuals"
    assert tool.description == DEFAULT_TOOL_DESCRIPTION
    assert list(tool.args) == ["query"]
    assert tool.args["query"]["type"] == "string"
    custom = create_fusion_tool(FixedRetriever(docs=DOCS), description="Search the manuals.")
    assert custom.description == "Search the manuals."


def test_no_results_and_empty_query() -> None:
    tool = create_fusion_tool(FixedRetriever(docs=[]))
    assert tool.invoke({"query": "nothing"}) == "No documents found for 'nothing'."
    # An empty query is reported back to the model instead of crashing the agent.
    retriever = FixedRetriever(docs=DOCS)
    message = create_fusion_tool(retriever).invoke(
        {"type": "tool_call", "id": "c1", "name": "search_documents", "args": {"query": "  "}}
    )
    assert isinstance(message, ToolMessage)
    assert message.status == "error"
    assert "query must not be empty" in str(message.content)
    assert retriever.queries == []


def test_max_chars_and_any_runnable() -> None:
    long_doc = Document("word " * 200)
    tool = create_fusion_tool(RunnableLambda(lambda q: [long_doc]), max_chars=40)
    out = tool.invoke({"query": "x"})
    assert out.startswith("[1] word") and out.endswith(" …") and len(out) < 60


def test_k_is_passed_to_a_fusion_retriever() -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    from langchain_fusion.retriever import FusionRetriever

    texts = [d.page_content for d in DOCS] + ["Service robots clean and deliver."]
    retriever = FusionRetriever.from_texts(texts, DeterministicFakeEmbedding(size=16), k=3)
    out = create_fusion_tool(retriever, k=1).invoke({"query": "collaborative cobots"})
    assert out.startswith("[1] (score ") and "Cobots are collaborative" in out
    assert "[2]" not in out


def test_bad_arguments() -> None:
    retriever = FixedRetriever(docs=DOCS)
    with pytest.raises(TypeError, match="retriever must be a LangChain retriever"):
        create_fusion_tool(DOCS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"name must be 1-64 letters.*got 'search docs'"):
        create_fusion_tool(retriever, name="search docs")
    with pytest.raises(ValueError, match="description must be a non-empty string"):
        create_fusion_tool(retriever, description=" ")
    with pytest.raises(ValueError, match="k must be None or an int >= 1, got 0"):
        create_fusion_tool(retriever, k=0)
    with pytest.raises(ValueError, match="max_chars must be None or an int >= 1, got -1"):
        create_fusion_tool(retriever, max_chars=-1)
