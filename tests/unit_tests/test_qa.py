from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForLLMRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from pydantic import Field

from langchain_fusion.qa import (
    DEFAULT_MAX_QUESTION_CHARS,
    NO_LLM_NOTICE,
    QA_PROMPT,
    LLMError,
    QAChain,
    QAEvent,
    QAResult,
    build_qa_chain,
    format_sources,
    resolve_llm,
)
from langchain_fusion.verify import UNVERIFIED_QUOTE_MARKER
from tests.fakes import FixedRetriever

DOCS = [
    Document(
        "Explainable AI (XAI) aims to make AI systems more transparent and understandable.",
        id="d1",
        metadata={
            "source": "/data/AI_Information.pdf",
            "file_name": "AI_Information.pdf",
            "page": 4,
            "chunk": 0,
            "fusion": {
                "score": 0.83,
                "method": "convex",
                "normalization": "minmax",
                "rank": 1,
                "retrievers": {
                    "dense": {"raw": 0.61, "normalized": 0.9, "rank": 2},
                    "bm25": {"raw": 12.3, "normalized": 0.76, "rank": 1},
                },
            },
        },
    ),
    Document(
        "Transparency and explainability are essential for building trust in AI systems.",
        id="d2",
        metadata={"file_name": "AI_Information.pdf", "page": 10, "section": "AI and Ethics"},
    ),
    Document("Reinforcement learning trains an agent by trial and error.", id="d3"),
]


class ScriptedChatModel(BaseChatModel):
    """Replies with scripted texts (streamed word by word) and records the prompts."""

    replies: list[str]
    error: BaseException | None = None
    prompts: list[list[BaseMessage]] = Field(default_factory=list)
    model_name: str = "scripted-1"

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _next(self, messages: list[BaseMessage]) -> str:
        self.prompts.append(messages)
        if self.error is not None:
            raise self.error
        return self.replies[(len(self.prompts) - 1) % len(self.replies)]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = self._next(messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        text = self._next(messages)
        words = text.split(" ")
        for i, word in enumerate(words):
            piece = word if i == len(words) - 1 else word + " "
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))


ANSWER = (
    'XAI "aims to make AI systems more transparent and understandable" [1], which builds '
    'trust [2][7]. It also "guarantees that every decision is provably fair" [1].'
)


@pytest.fixture(autouse=True)
def _no_openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture
def retriever() -> FixedRetriever:
    return FixedRetriever(docs=DOCS)


# ---------------------------------------------------------------------------- formatting


def test_format_sources_numbers_labels_and_scores() -> None:
    text = format_sources(DOCS, with_scores=True)
    assert text.split("\n\n") == [
        "[1] (AI_Information.pdf, p. 4, score 0.830) Explainable AI (XAI) aims to make AI "
        "systems more transparent and understandable.",
        "[2] (AI_Information.pdf, p. 10, AI and Ethics) Transparency and explainability are "
        "essential for building trust in AI systems.",
        "[3] Reinforcement learning trains an agent by trial and error.",
    ]
    assert "score" not in format_sources(DOCS)
    assert format_sources([]) == ""


def test_format_sources_collapses_whitespace_and_truncates() -> None:
    doc = Document("word " * 50 + "\n\n  end")
    out = format_sources([doc], max_chars=30)
    assert out.startswith("[1] word word")
    assert out.endswith(" …")
    assert len(out) < 45
    with pytest.raises(ValueError, match="max_chars must be None or an int >= 1, got 0"):
        format_sources([doc], max_chars=0)
    with pytest.raises(TypeError, match=r"docs\[0\] must be a Document"):
        format_sources(["text"])  # type: ignore[list-item]


def test_prompt_states_the_rules() -> None:
    messages = QA_PROMPT.format_messages(sources="[1] Alpha.", question="What?")
    system, human = messages[0].content, messages[1].content
    assert isinstance(system, str) and isinstance(human, str)
    assert "only" in system and "[1]" in system
    assert "exactly" in system and "double quotes" in system
    assert "cannot answer" in system
    assert "[1] Alpha." in human and "Question: What?" in human


# ---------------------------------------------------------------------------- resolve_llm


def test_resolve_llm_passthrough_false_and_offline() -> None:
    model = ScriptedChatModel(replies=["x"])
    assert resolve_llm(model) is model
    assert resolve_llm(False) is None
    assert resolve_llm(None) is None  # no OPENAI_API_KEY (fixture)


def test_resolve_llm_default_openai_when_key_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_openai import ChatOpenAI

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    model = resolve_llm(None)  # constructing the client opens no connection
    assert isinstance(model, ChatOpenAI)
    assert model.model_name == "gpt-4o-mini"
    assert model.temperature == 0


def test_resolve_llm_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_openai import ChatOpenAI

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    for spec in ("openai:gpt-4o", "OpenAI:gpt-4o", "gpt-4o"):
        model = resolve_llm(spec)
        assert isinstance(model, ChatOpenAI) and model.model_name == "gpt-4o"
    with pytest.raises(ValueError, match="llm must not be an empty string"):
        resolve_llm("  ")
    with pytest.raises(ValueError, match="must name a model after 'openai:'"):
        resolve_llm("openai:")
    with pytest.raises(TypeError, match=r"llm must be a BaseChatModel.*got int"):
        resolve_llm(3)  # type: ignore[arg-type]


def test_resolve_llm_other_provider_without_langchain(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    real_import = importlib.import_module

    def no_langchain(name: str, package: str | None = None) -> Any:
        if name.startswith(("langchain.", "langchain_classic")):
            raise ImportError(name)
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", no_langchain)
    with pytest.raises(ImportError, match="pip install langchain"):
        resolve_llm("anthropic:claude-3-5-haiku-latest")


def test_resolve_llm_other_provider_missing_integration() -> None:
    # init_chat_model is found (langchain or langchain_classic) but the provider package is not
    # installed here: its ImportError names the package.
    with pytest.raises(ImportError, match=r"langchain-anthropic|langchain_anthropic"):
        resolve_llm("anthropic:claude-3-5-haiku-latest")


# ---------------------------------------------------------------------------- generated answers


def test_invoke_gives_sources_verified_answer_and_model_name(retriever: FixedRetriever) -> None:
    model = ScriptedChatModel(replies=[ANSWER])
    result = build_qa_chain(retriever, model).invoke("What is explainable AI?")
    assert isinstance(result, QAResult)
    assert result.mode == "generated"
    assert result.llm == "scripted-1"
    assert result.question == "What is explainable AI?"
    assert result.sources == DOCS
    assert result.raw_answer == ANSWER
    assert result.verification is not None
    assert result.verification.removed_citations == [7]
    assert result.verification.unverified_quotes == [
        "guarantees that every decision is provably fair"
    ]
    assert result.answer == (
        'XAI "aims to make AI systems more transparent and understandable" [1], which builds '
        f"trust [2]. It also {UNVERIFIED_QUOTE_MARKER} [1]."
    )
    assert [d.id for d in result.cited_sources] == ["d1", "d2"]
    # The model saw the numbered sources and the question.
    (prompt,) = model.prompts
    human = prompt[-1].content
    assert isinstance(human, str)
    assert "[1] (AI_Information.pdf, p. 4) Explainable AI" in human
    assert "[3] Reinforcement learning" in human
    assert human.endswith("Question: What is explainable AI?")
    assert retriever.queries == ["What is explainable AI?"]


def test_verify_false_keeps_the_raw_answer(retriever: FixedRetriever) -> None:
    chain = build_qa_chain(retriever, ScriptedChatModel(replies=[ANSWER]), verify=False)
    result = chain.invoke("What is explainable AI?")
    assert result.answer == ANSWER
    assert result.verification is None


def test_stream_yields_tokens_and_retrieves_once(retriever: FixedRetriever) -> None:
    chain = build_qa_chain(retriever, ScriptedChatModel(replies=[ANSWER]))
    tokens = list(chain.stream("What is explainable AI?"))
    assert len(tokens) > 5
    assert all(isinstance(t, str) for t in tokens)
    assert "".join(tokens) == ANSWER
    assert retriever.queries == ["What is explainable AI?"]


def test_stream_result_events(retriever: FixedRetriever) -> None:
    chain = build_qa_chain(retriever, ScriptedChatModel(replies=[ANSWER]))
    events = list(chain.stream_result("What is explainable AI?"))
    assert all(isinstance(e, QAEvent) for e in events)
    kinds = [e.kind for e in events]
    assert kinds[0] == "sources" and kinds[-1] == "result"
    assert set(kinds[1:-1]) == {"token"}
    assert events[0].sources == DOCS
    result = events[-1].result
    assert result is not None
    assert "".join(e.token for e in events if e.kind == "token") == result.raw_answer == ANSWER
    assert result.verification is not None and result.verification.removed_citations == [7]
    assert len(retriever.queries) == 1


async def test_async_api(retriever: FixedRetriever) -> None:
    chain = build_qa_chain(retriever, ScriptedChatModel(replies=[ANSWER]))
    result = await chain.ainvoke("What is explainable AI?")
    assert result.verification is not None and result.verification.removed_citations == [7]
    tokens = [t async for t in chain.astream("What is explainable AI?")]
    assert "".join(tokens) == ANSWER and len(tokens) > 5
    events = [e async for e in chain.astream_result("What is explainable AI?")]
    assert events[0].kind == "sources" and events[-1].kind == "result"
    assert len(retriever.queries) == 3  # one per question


def test_batch_and_mapping_input(retriever: FixedRetriever) -> None:
    chain = build_qa_chain(retriever, ScriptedChatModel(replies=["A [1].", "B [2]."]))
    results = chain.batch(["first?", {"question": "second?"}], config={"max_concurrency": 1})
    assert [r.answer for r in results] == ["A [1].", "B [2]."]
    assert [r.question for r in results] == ["first?", "second?"]


def test_chain_composes_in_lcel(retriever: FixedRetriever) -> None:
    chain = build_qa_chain(retriever, ScriptedChatModel(replies=["Short answer [1]."]))
    pipeline = chain | RunnableLambda(lambda r: r.answer.upper())
    assert pipeline.invoke("q?") == "SHORT ANSWER [1]."
    assert "".join(pipeline.stream("q?")) == "SHORT ANSWER [1]."


def test_as_lcel_is_the_plain_pipeline(retriever: FixedRetriever) -> None:
    model = ScriptedChatModel(replies=["Plain [4]."])
    chain = build_qa_chain(retriever, model, k=2)
    assert chain.as_lcel().invoke("q?") == "Plain [4]."  # no verification in the plain pipeline
    human = model.prompts[0][-1].content
    assert isinstance(human, str) and "[2]" in human and "[3]" not in human
    with pytest.raises(ValueError, match="needs a chat model"):
        build_qa_chain(retriever, llm=False).as_lcel()


def test_k_limits_the_sources(retriever: FixedRetriever) -> None:
    model = ScriptedChatModel(replies=["ok [1]"])
    result = build_qa_chain(retriever, model, k=2).invoke("q?")
    assert [d.id for d in result.sources] == ["d1", "d2"]
    human = model.prompts[0][-1].content
    assert isinstance(human, str) and "[3]" not in human


def test_k_is_passed_to_a_fusion_retriever() -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    from langchain_fusion.retriever import FusionRetriever

    texts = [d.page_content for d in DOCS]
    fusion = FusionRetriever.from_texts(texts, DeterministicFakeEmbedding(size=16), k=3)
    result = build_qa_chain(fusion, llm=False, k=1).invoke("What does explainable AI aim at?")
    assert len(result.sources) == 1
    assert "fusion" in result.sources[0].metadata
    assert result.sources[0].page_content == DOCS[0].page_content


def test_works_with_any_runnable_retriever() -> None:
    chain = build_qa_chain(RunnableLambda(lambda q: DOCS[:1]), ScriptedChatModel(replies=["x"]))
    assert chain.invoke("q?").sources == DOCS[:1]

    def not_docs(query: str) -> str:
        return "not docs"

    bad = build_qa_chain(RunnableLambda(not_docs), ScriptedChatModel(replies=["x"]))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must return a list of Documents, got str"):
        bad.invoke("q?")


def test_callbacks_nest_retriever_and_model_under_the_chain(retriever: FixedRetriever) -> None:
    class Recorder(BaseCallbackHandler):
        def __init__(self) -> None:
            self.events: list[tuple[str, UUID | None]] = []
            self.chain_run: UUID | None = None

        def on_chain_start(
            self,
            serialized: Any,
            inputs: Any,
            *,
            run_id: UUID,
            parent_run_id: UUID | None = None,
            **kw: Any,
        ) -> None:
            if parent_run_id is None:
                self.chain_run = run_id

        def on_retriever_start(
            self,
            serialized: Any,
            query: str,
            *,
            run_id: UUID,
            parent_run_id: UUID | None = None,
            **kw: Any,
        ) -> None:
            self.events.append(("retriever", parent_run_id))

        def on_chat_model_start(
            self,
            serialized: Any,
            messages: Any,
            *,
            run_id: UUID,
            parent_run_id: UUID | None = None,
            **kw: Any,
        ) -> None:
            self.events.append(("model", parent_run_id))

    chain = build_qa_chain(retriever, ScriptedChatModel(replies=["ok [1]"]))
    for run in (chain.invoke, lambda q, config: list(chain.stream(q, config))):
        recorder = Recorder()
        run("q?", {"callbacks": [recorder]})
        assert recorder.chain_run is not None
        assert recorder.events[0] == ("retriever", recorder.chain_run)
        assert recorder.events[1][0] == "model"  # inside the prompt | llm | parser sequence


def test_str_of_result_lists_sources(retriever: FixedRetriever) -> None:
    result = build_qa_chain(retriever, ScriptedChatModel(replies=["XAI [1]."])).invoke("q?")
    assert str(result).splitlines() == [
        "XAI [1].",
        "",
        "Sources:",
        "[1] AI_Information.pdf, p. 4",
        "[2] AI_Information.pdf, p. 10, AI and Ethics",
        "[3] Reinforcement learning trains an agent by trial and error.",
    ]


# ---------------------------------------------------------------------------- extractive mode


def test_without_llm_the_answer_is_extractive_and_says_so(retriever: FixedRetriever) -> None:
    chain = build_qa_chain(retriever)  # no llm, no OPENAI_API_KEY
    assert chain.llm is None and chain.model_name is None
    result = chain.invoke("What does explainable AI aim to make AI systems?")
    assert result.mode == "extractive"
    assert result.llm is None
    assert result.verification is None
    assert result.answer.startswith(NO_LLM_NOTICE + "\n\n")
    assert (
        "Explainable AI (XAI) aims to make AI systems more transparent and understandable. [1]"
        in (result.answer)
    )
    assert result.extractive is not None and result.extractive.answerable
    assert result.cited_sources[0].id == "d1"
    events = list(chain.stream_result("What does explainable AI aim to make AI systems?"))
    assert [e.kind for e in events] == ["sources", "token", "result"]
    assert events[1].token == result.answer


def test_extractive_unanswerable(retriever: FixedRetriever) -> None:
    result = build_qa_chain(retriever, llm=False).invoke("Can AI predict earthquakes?")
    assert result.mode == "extractive"
    assert "The sources do not seem to answer this question." in result.answer
    assert result.extractive is not None and not result.extractive.answerable


def test_no_documents_skips_nothing_and_answers_honestly() -> None:
    chain = build_qa_chain(FixedRetriever(docs=[]), llm=False)
    result = chain.invoke("Anything?")
    assert result.sources == []
    assert result.answer.endswith("No sources were found for this question.")


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_question_is_rejected(retriever: FixedRetriever, question: str) -> None:
    chain = build_qa_chain(retriever, llm=False)
    with pytest.raises(ValueError, match="question must not be empty or whitespace"):
        chain.invoke(question)
    with pytest.raises(ValueError, match="question must not be empty"):
        list(chain.stream_result(question))
    assert retriever.queries == []


def test_long_question_is_rejected(retriever: FixedRetriever) -> None:
    chain = build_qa_chain(retriever, llm=False)
    chain.invoke("x" * DEFAULT_MAX_QUESTION_CHARS)
    with pytest.raises(ValueError, match="question is 4001 characters long; the limit is 4000"):
        chain.invoke("x" * 4001)
    short = build_qa_chain(retriever, llm=False, max_question_chars=10)
    with pytest.raises(ValueError, match="question is 11 characters long; the limit is 10"):
        short.invoke("x" * 11)


def test_bad_inputs_and_arguments(retriever: FixedRetriever) -> None:
    chain = build_qa_chain(retriever, llm=False)
    with pytest.raises(TypeError, match="question must be a str, got int"):
        chain.invoke(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must have a 'question' key, got keys"):
        chain.invoke({"query": "x"})
    with pytest.raises(TypeError, match="retriever must be a LangChain retriever"):
        build_qa_chain(DOCS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be None or an int >= 1, got 0"):
        build_qa_chain(retriever, k=0)
    with pytest.raises(ValueError, match="max_question_chars must be an int >= 1, got 0"):
        build_qa_chain(retriever, max_question_chars=0)
    with pytest.raises(ValueError, match="max_sentences must be >= 1"):
        build_qa_chain(retriever, max_sentences=0)
    bad_prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    with pytest.raises(ValueError, match="'sources' and 'question'"):
        build_qa_chain(retriever, prompt=bad_prompt)


def test_custom_prompt_is_used(retriever: FixedRetriever) -> None:
    model = ScriptedChatModel(replies=["ok"])
    prompt = ChatPromptTemplate.from_messages([("human", "CTX {sources} Q {question}")])
    build_qa_chain(retriever, model, prompt=prompt).invoke("why?")
    assert str(model.prompts[0][0].content).startswith("CTX [1] (AI_Information.pdf, p. 4) ")


@pytest.mark.parametrize(
    "error", [RuntimeError("upstream 500"), TimeoutError("timed out after 30s")]
)
def test_model_failure_raises_llm_error_with_sources(
    retriever: FixedRetriever, error: Exception
) -> None:
    chain = build_qa_chain(retriever, ScriptedChatModel(replies=["x"], error=error))
    with pytest.raises(LLMError) as info:
        chain.invoke("What is XAI?")
    err = info.value
    assert str(err) == f"chat model 'scripted-1' failed: {type(error).__name__}: {error}"
    assert err.model == "scripted-1"
    assert err.sources == DOCS
    assert err.question == "What is XAI?"
    assert err.__cause__ is error
    with pytest.raises(LLMError) as streamed:
        list(chain.stream("What is XAI?"))
    assert streamed.value.sources == DOCS


async def test_model_failure_async(retriever: FixedRetriever) -> None:
    chain = build_qa_chain(retriever, ScriptedChatModel(replies=["x"], error=TimeoutError("slow")))
    with pytest.raises(LLMError, match="TimeoutError: slow"):
        await chain.ainvoke("q?")
    with pytest.raises(LLMError):
        [t async for t in chain.astream("q?")]


def test_retriever_errors_are_not_wrapped() -> None:
    def boom(q: str) -> list[Document]:
        raise ConnectionError("index offline")

    chain = build_qa_chain(RunnableLambda(boom), ScriptedChatModel(replies=["x"]))
    with pytest.raises(ConnectionError, match="index offline"):
        chain.invoke("q?")


def test_qachain_is_the_built_type(retriever: FixedRetriever) -> None:
    chain = build_qa_chain(retriever, llm=False)
    assert isinstance(chain, QAChain)
    assert chain.get_name() == "QAChain"


def test_no_documents_does_not_call_the_model() -> None:
    model = ScriptedChatModel(replies=["From my own knowledge: 42."])
    result = build_qa_chain(FixedRetriever(docs=[]), model).invoke("Meaning of life?")
    assert model.prompts == []
    assert result.mode == "extractive" and result.llm is None
    assert result.answer == "No sources were found for this question."  # no "No LLM" notice
    events = list(build_qa_chain(FixedRetriever(docs=[]), model).stream_result("q?"))
    assert [e.kind for e in events] == ["sources", "token", "result"]
    assert model.prompts == []


def test_repr_and_input_schema(retriever: FixedRetriever) -> None:
    chain = build_qa_chain(retriever, ScriptedChatModel(replies=["x"]), k=3)
    assert repr(chain) == "QAChain(retriever=FixedRetriever, llm='scripted-1', k=3, verify=True)"
    schema = chain.get_input_jsonschema()  # a valid schema for str | mapping input
    assert {"type": "string"} in schema["anyOf"]


# ---------------------------------------------------------------------------- end to end

DATA = Path(
    os.environ.get(
        "LANGCHAIN_FUSION_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"
    )
)


@pytest.mark.slow
@pytest.mark.data
def test_pdf_questions_end_to_end_with_fusion_retriever_offline() -> None:
    """Ingest the tutorial PDF, index it with the local model, answer its questions offline."""
    pdf = DATA / "pdfs" / "AI_Information.pdf"
    if not pdf.exists():
        pytest.skip(f"benchmark data not found at {DATA}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from langchain_fusion.dense.embeddings import local_embeddings
    from langchain_fusion.ingest import ingest
    from langchain_fusion.retriever import FusionRetriever

    chunks = ingest(pdf, show_progress=False).chunks
    retriever = FusionRetriever.from_documents(chunks, local_embeddings(), k=4)
    chain = build_qa_chain(retriever, llm=False)
    questions = json.loads((DATA / "pdfs" / "AI_Information.qa.json").read_text())
    answered = {
        "What is 'Explainable AI' and why is it considered important?": "Explainable AI (XAI) aims",
        "How does AI contribute to personalized medicine?": "AI enables personalized medicine",
        "What is a 'cobot'?": "collaborative settings (cobots)",
    }
    for item in questions:
        result = chain.invoke(item["question"])
        assert result.mode == "extractive" and len(result.sources) == 4
        assert all(
            "fusion" in d.metadata and d.metadata["file_name"] == pdf.name for d in result.sources
        )
        assert result.extractive is not None
        if item["question"] in answered:
            assert result.extractive.answerable
            assert answered[item["question"]] in result.answer
        elif not item["has_answer"]:
            assert not result.extractive.answerable, item["question"]
