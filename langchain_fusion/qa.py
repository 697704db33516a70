"""Question answering over any LangChain retriever, with numbered citations and verification.

[`build_qa_chain`][langchain_fusion.qa.build_qa_chain] wires a retriever and a chat model into
the usual LCEL pipeline:

```python
{"sources": retriever | format_sources, "question": RunnablePassthrough()}
| QA_PROMPT | llm | StrOutputParser()
```

and wraps it so that one call gives everything a RAG application needs: the answer, the exact
sources the model saw (numbered as in the prompt), and a
[`VerificationReport`][langchain_fusion.verify.VerificationReport] in which citations to
non-existent sources and quotations absent from the sources have been removed.

* ``chain.invoke(question)`` returns a [`QAResult`][langchain_fusion.qa.QAResult].
* ``chain.stream(question)`` yields the answer's text chunks as the model produces them.
* ``chain.stream_result(question)`` yields [`QAEvent`][langchain_fusion.qa.QAEvent]s: the
  sources, then the text chunks, then the final result (with verification). Retrieval runs once.

Without a chat model (no ``llm`` and no ``OPENAI_API_KEY``), the chain still answers, offline,
with source sentences chosen by
[`extractive_answer`][langchain_fusion.extractive.extractive_answer], and says so at the start of
the answer.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForChainRun,
    CallbackManagerForChainRun,
)
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import BasePromptTemplate, ChatPromptTemplate
from langchain_core.runnables import (
    Runnable,
    RunnableConfig,
    RunnableLambda,
    RunnableParallel,
    RunnablePassthrough,
)
from langchain_core.runnables.config import (
    ensure_config,
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
    patch_config,
)

from langchain_fusion.extractive import DEFAULT_MIN_SIMILARITY, ExtractiveAnswer, extractive_answer
from langchain_fusion.formatting import format_sources, source_label
from langchain_fusion.sources import accepts_call_option
from langchain_fusion.verify import VerificationReport, verify_answer

__all__ = [
    "DEFAULT_MAX_QUESTION_CHARS",
    "NO_LLM_NOTICE",
    "QA_PROMPT",
    "LLMError",
    "QAChain",
    "QAEvent",
    "QAResult",
    "build_qa_chain",
    "format_sources",
    "resolve_llm",
]

DEFAULT_MAX_QUESTION_CHARS = 4000
"""Longest question accepted by default, in characters."""

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
"""The model used when ``llm`` is None and ``OPENAI_API_KEY`` is set."""

NO_LLM_NOTICE = (
    "No LLM configured (set OPENAI_API_KEY or pass llm=...); "
    "showing the most relevant sentences from the sources."
)
"""First line of every answer produced without a chat model."""

_SYSTEM = """\
You answer questions using only the numbered sources provided by the user.
- Use only information stated in the sources, never outside knowledge.
- Cite the source of every statement with its number in square brackets, e.g. [1] or [2][3]. \
Cite only numbers that appear in the list of sources.
- When you quote, copy the words exactly as they appear in the source and put them in double \
quotes.
- If the sources do not contain the answer, say that you cannot answer the question from the \
provided sources, and do not guess.
- Be concise."""

QA_PROMPT: ChatPromptTemplate = ChatPromptTemplate.from_messages(
    [("system", _SYSTEM), ("human", "Sources:\n\n{sources}\n\nQuestion: {question}")]
)
"""The default prompt; its input variables are ``sources`` and ``question``.

Example:
    >>> sorted(QA_PROMPT.input_variables)
    ['question', 'sources']
"""

Mode = Literal["generated", "extractive"]
QAInput = str | Mapping[str, Any]


# ---------------------------------------------------------------------------- formatting


# ---------------------------------------------------------------------------- models


def resolve_llm(llm: BaseChatModel | str | Literal[False] | None = None) -> BaseChatModel | None:
    """Turn the ``llm`` argument of the QA chain into a chat model, or None for offline answers.

    * a chat model is returned as is;
    * ``False`` means "no model" (always answer extractively, whatever the environment says);
    * a string ``"provider:model"`` (or a bare OpenAI model name such as ``"gpt-4o-mini"``)
      becomes a chat model: ``openai:`` through ``langchain_openai.ChatOpenAI``; other providers
      through ``init_chat_model`` from the ``langchain`` package (or, if only that is installed,
      ``langchain_classic``);
    * ``None`` gives ``ChatOpenAI(model="gpt-4o-mini", temperature=0, timeout=60)`` when
      ``OPENAI_API_KEY`` is set and ``langchain-openai`` is installed, else None.

    No network connection is opened here; the model connects when first called.

    Args:
        llm: A chat model, a model string, ``False`` or ``None``.

    Returns:
        The chat model, or None when answers should be extractive.

    Raises:
        TypeError: If ``llm`` has another type.
        ValueError: If ``llm`` is an empty string.
        ImportError: If the package needed for the requested provider is not installed.

    Example:
        >>> resolve_llm(False) is None
        True
        >>> from langchain_core.language_models import FakeListChatModel
        >>> model = FakeListChatModel(responses=["hi"])
        >>> resolve_llm(model) is model
        True

    """
    if llm is False:
        return None
    if isinstance(llm, BaseChatModel):
        return llm
    if llm is None:
        if not os.environ.get("OPENAI_API_KEY"):
            return None
        try:
            from langchain_openai import ChatOpenAI
        except ImportError:
            warnings.warn(
                "OPENAI_API_KEY is set but langchain-openai is not installed "
                '(pip install "langchain-fusion[openai]"); answering without an LLM.',
                stacklevel=2,
            )
            return None
        return ChatOpenAI(model=DEFAULT_OPENAI_MODEL, temperature=0, timeout=60)
    if isinstance(llm, str):
        return _model_from_string(llm)
    raise TypeError(
        "llm must be a BaseChatModel, a model string such as 'openai:gpt-4o-mini', "
        f"False or None, got {type(llm).__name__}"
    )


def _model_from_string(spec: str) -> BaseChatModel:
    spec = spec.strip()
    if not spec:
        raise ValueError("llm must not be an empty string; use e.g. 'openai:gpt-4o-mini'")
    provider, sep, model = spec.partition(":")
    if not sep and spec.lower().startswith(("gpt-", "chatgpt", "o1", "o3", "o4")):
        provider, model = "openai", spec
    if sep and provider.lower() == "openai":
        provider = "openai"
    if provider == "openai":
        if not model:
            raise ValueError(f"llm must name a model after 'openai:', got {spec!r}")
        try:
            from langchain_openai import ChatOpenAI
        except ImportError:
            raise ImportError(
                f'llm={spec!r} needs langchain-openai: pip install "langchain-fusion[openai]"'
            ) from None
        try:
            return ChatOpenAI(model=model)
        except Exception as exc:  # the SDK refuses to start, e.g. without OPENAI_API_KEY
            raise ValueError(
                f"cannot create the chat model {spec!r}: {type(exc).__name__}: {exc}"
            ) from exc
    for module in ("langchain.chat_models", "langchain_classic.chat_models"):
        try:
            init_chat_model = importlib.import_module(module).init_chat_model
        except ImportError:
            continue
        with warnings.catch_warnings():
            # langchain_classic's copy is deprecated in favour of langchain's; same behaviour.
            warnings.filterwarnings("ignore", message=".*init_chat_model.*")
            chat_model = init_chat_model(spec)
        if not isinstance(chat_model, BaseChatModel):
            raise TypeError(f"init_chat_model({spec!r}) did not return a chat model")
        return chat_model
    raise ImportError(
        f"llm={spec!r} needs init_chat_model from the langchain package (pip install langchain) "
        "and that provider's integration package; without langchain only 'openai:<model>' works."
    )


def _model_name(llm: BaseChatModel) -> str:
    for attr in ("model_name", "model", "model_id", "deployment_name"):
        value = getattr(llm, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(llm).__name__


# ---------------------------------------------------------------------------- results


class LLMError(RuntimeError):
    """The chat model failed (error, timeout, refused connection...) while answering.

    The retrieval had succeeded: its documents are on the exception, so an application can
    still show them.

    Attributes:
        model: Name of the chat model.
        question: The question being answered.
        sources: The documents retrieved for the question (what the model was given).

    Example:
        >>> err = LLMError("gpt-4o-mini", TimeoutError("timed out"), question="q", sources=[])
        >>> str(err)
        "chat model 'gpt-4o-mini' failed: TimeoutError: timed out"

    """

    def __init__(
        self,
        model: str,
        cause: BaseException,
        *,
        question: str,
        sources: Sequence[Document],
    ) -> None:
        detail = str(cause) or repr(cause)
        super().__init__(f"chat model {model!r} failed: {type(cause).__name__}: {detail}")
        self.model = model
        self.question = question
        self.sources = list(sources)


@dataclass(frozen=True)
class QAResult:
    """The answer to one question, with the sources behind it.

    Attributes:
        question: The question (stripped).
        answer: The answer shown to users. In ``"generated"`` mode with verification on, this is
            the verified text (invalid citations and unsupported quotes removed).
        sources: The documents given to the model, in order: ``[n]`` is ``sources[n - 1]``.
        mode: ``"generated"`` (a chat model wrote the answer) or ``"extractive"`` (sentences
            copied from the sources, no model: no model is configured, or the retriever found
            nothing, in which case the model is not called).
        llm: Name of the chat model that wrote the answer; None in extractive mode.
        verification: What the verifier found; None in extractive mode or with ``verify=False``.
        raw_answer: The text as the model produced it (equal to ``answer`` when nothing was
            changed).
        extractive: The extractive answer's details (in extractive mode).

    Example:
        >>> from langchain_core.runnables import RunnableLambda
        >>> docs = [Document("Paris is the capital of France."),
        ...         Document("Berlin is in Germany.")]
        >>> retriever = RunnableLambda(lambda question: docs)
        >>> result = build_qa_chain(retriever, llm=False).invoke("What is the capital of France?")
        >>> result.mode, result.llm, result.cited_sources[0].page_content
        ('extractive', None, 'Paris is the capital of France.')

    """

    question: str
    answer: str
    sources: list[Document]
    mode: Mode
    llm: str | None = None
    verification: VerificationReport | None = None
    raw_answer: str = ""
    extractive: ExtractiveAnswer | None = field(default=None, repr=False)

    @property
    def cited_sources(self) -> list[Document]:
        """The sources the answer cites, in order of first citation."""
        if self.verification is not None:
            numbers = self.verification.cited
        elif self.extractive is not None:
            numbers = list(dict.fromkeys(s.source for s in self.extractive.sentences))
        else:
            numbers = []
        return [self.sources[n - 1] for n in numbers if 1 <= n <= len(self.sources)]

    def __str__(self) -> str:
        lines = [self.answer]
        if self.sources:
            lines += ["", "Sources:"]
            for i, doc in enumerate(self.sources, 1):
                label = source_label(doc) or " ".join(doc.page_content.split())[:60]
                lines.append(f"[{i}] {label}")
        return "\n".join(lines)


@dataclass(frozen=True)
class QAEvent:
    """One step of [`QAChain.stream_result`][langchain_fusion.qa.QAChain.stream_result].

    ``kind`` is ``"sources"`` (once, first: ``sources`` holds the retrieved documents),
    ``"token"`` (``token`` holds the next chunk of answer text) or ``"result"`` (once, last:
    ``result`` holds the final [`QAResult`][langchain_fusion.qa.QAResult]).

    Example:
        >>> from langchain_core.runnables import RunnableLambda
        >>> docs = [Document("Paris is the capital of France."),
        ...         Document("Berlin is in Germany.")]
        >>> retriever = RunnableLambda(lambda question: docs)
        >>> chain = build_qa_chain(retriever, llm=False)
        >>> [e.kind for e in chain.stream_result("What is the capital of France?")]
        ['sources', 'token', 'result']

    """

    kind: Literal["sources", "token", "result"]
    token: str = ""
    sources: list[Document] = field(default_factory=list)
    result: QAResult | None = None


# ---------------------------------------------------------------------------- the chain


class QAChain(Runnable[QAInput, QAResult]):
    """Retrieval + answer generation + verification, as a LangChain Runnable.

    Use [`build_qa_chain`][langchain_fusion.qa.build_qa_chain] to create one. The input is the
    question (a string, or a mapping with a ``"question"`` key). ``invoke``/``ainvoke``/``batch``
    return [`QAResult`][langchain_fusion.qa.QAResult]s. ``stream``/``astream`` differ from the
    usual Runnable contract on purpose: they yield the answer text (str chunks), which is what
    a chat UI displays; ``stream_result``/``astream_result`` yield
    [`QAEvent`][langchain_fusion.qa.QAEvent]s ending with the full result. When the chain is a
    step inside a larger LCEL pipeline it passes a ``QAResult`` on.

    Attributes:
        retriever: The retriever (any Runnable from a query string to a list of Documents).
        llm: The chat model, or None (extractive answers).
        answer_chain: ``prompt | llm | StrOutputParser()``, the generation step, or None.

    Example:
        >>> from langchain_core.runnables import RunnableLambda
        >>> docs = [Document("Paris is the capital of France."),
        ...         Document("Berlin is in Germany.")]
        >>> retriever = RunnableLambda(lambda question: docs)
        >>> chain = build_qa_chain(retriever, llm=False)
        >>> print(chain.invoke("What is the capital of France?").answer)
        No LLM configured (set OPENAI_API_KEY or pass llm=...); showing the most relevant sentences from the sources.
        <BLANKLINE>
        Paris is the capital of France. [1]

    """  # noqa: E501

    def __init__(
        self,
        retriever: Runnable[str, list[Document]],
        llm: BaseChatModel | str | Literal[False] | None = None,
        *,
        k: int | None = None,
        verify: bool = True,
        prompt: BasePromptTemplate[Any] = QA_PROMPT,
        max_question_chars: int = DEFAULT_MAX_QUESTION_CHARS,
        max_sentences: int = 3,
        embeddings: Embeddings | Literal[False] | None = None,
        min_similarity: float | Literal["auto"] | None = "auto",
        banned_phrases: Sequence[str] = (),
    ) -> None:
        if not isinstance(retriever, Runnable):
            raise TypeError(
                "retriever must be a LangChain retriever (a Runnable from str to "
                f"list[Document]), got {type(retriever).__name__}"
            )
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ValueError(f"k must be None or an int >= 1, got {k!r}")
        if (
            isinstance(max_question_chars, bool)
            or not isinstance(max_question_chars, int)
            or max_question_chars < 1
        ):
            raise ValueError(f"max_question_chars must be an int >= 1, got {max_question_chars!r}")
        if isinstance(max_sentences, bool) or not isinstance(max_sentences, int):
            raise TypeError(f"max_sentences must be an int, got {max_sentences!r}")
        if max_sentences < 1:
            raise ValueError(f"max_sentences must be >= 1, got {max_sentences}")
        if not isinstance(prompt, BasePromptTemplate):
            raise TypeError(f"prompt must be a prompt template, got {type(prompt).__name__}")
        missing = {"sources", "question"} - set(prompt.input_variables)
        if missing:
            raise ValueError(
                f"prompt must have the input variables 'sources' and 'question', "
                f"got {sorted(prompt.input_variables)}"
            )
        self.retriever = retriever
        self.llm = resolve_llm(llm)
        self.k = k
        self.verify = bool(verify)
        self.prompt = prompt
        self.max_question_chars = max_question_chars
        self.max_sentences = max_sentences
        self.embeddings = _sentence_embeddings(retriever, embeddings)
        self.min_similarity = _min_similarity(self.embeddings, min_similarity)
        self.banned_phrases = list(banned_phrases)
        verify_answer("", [], banned_phrases=self.banned_phrases)  # checks the phrases now
        self.answer_chain: Runnable[dict[str, Any], str] | None = (
            None if self.llm is None else prompt | self.llm | StrOutputParser()
        )
        self._retriever_kwargs = _retriever_kwargs(retriever, k)

    def __repr__(self) -> str:
        return (
            f"QAChain(retriever={type(self.retriever).__name__}, llm={self.model_name!r}, "
            f"k={self.k}, verify={self.verify})"
        )

    @property
    def model_name(self) -> str | None:
        """Name of the chat model, or None in extractive mode."""
        return None if self.llm is None else _model_name(self.llm)

    def as_lcel(self) -> Runnable[str, str]:
        """Return the plain LCEL pipeline (question -> answer text), without result wrapping.

        ``{"sources": retriever | format_sources, "question": passthrough} | prompt | llm |
        StrOutputParser()``: handy to embed in other chains; no verification, no sources out.

        Raises:
            ValueError: If the chain has no chat model.

        Example:
            >>> from langchain_core.runnables import RunnableLambda
            >>> docs = [Document("Paris is the capital of France."),
            ...         Document("Berlin is in Germany.")]
            >>> retriever = RunnableLambda(lambda question: docs)
            >>> from langchain_core.language_models import FakeListChatModel
            >>> chain = build_qa_chain(retriever, FakeListChatModel(responses=["Paris [1]"]))
            >>> chain.as_lcel().invoke("capital of France?")
            'Paris [1]'

        """
        if self.answer_chain is None:
            raise ValueError("as_lcel() needs a chat model; this chain answers extractively")
        retrieve: Runnable[str, list[Document]] = self.retriever
        if self._retriever_kwargs:
            retrieve = self.retriever.bind(**self._retriever_kwargs)
        k = self.k
        sources = retrieve | RunnableLambda(lambda docs: format_sources(docs[:k]))
        inputs = RunnableParallel(sources=sources, question=RunnablePassthrough())
        return inputs | self.answer_chain

    # ------------------------------------------------------------------ sync API

    def invoke(
        self, input: QAInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> QAResult:
        """Answer one question.

        Args:
            input: The question, or a mapping with a ``"question"`` key.
            config: Runnable config (callbacks, tags, ...).
            **kwargs: Ignored (Runnable API compatibility).

        Returns:
            The [`QAResult`][langchain_fusion.qa.QAResult].

        Raises:
            ValueError: If the question is empty or longer than ``max_question_chars``.
            LLMError: If the chat model fails; ``.sources`` holds the retrieved documents.

        Example:
            >>> from langchain_core.runnables import RunnableLambda
            >>> docs = [Document("Paris is the capital of France."),
            ...         Document("Berlin is in Germany.")]
            >>> retriever = RunnableLambda(lambda question: docs)
            >>> from langchain_core.language_models import FakeListChatModel
            >>> model = FakeListChatModel(responses=["Paris [1][4]."])
            >>> result = build_qa_chain(retriever, model).invoke("Capital of France?")
            >>> result.answer, result.raw_answer, result.verification.removed_citations
            ('Paris [1].', 'Paris [1][4].', [4])

        """
        return self._call_with_config(self._invoke, input, config, run_type="chain")

    def _invoke(
        self, input: QAInput, run_manager: CallbackManagerForChainRun, config: RunnableConfig
    ) -> QAResult:
        question = self._question(input)
        child = patch_config(config, callbacks=run_manager.get_child())
        docs = self._retrieve(question, child)
        if self.answer_chain is None or not docs:
            return self._extractive(question, docs)
        try:
            raw = self.answer_chain.invoke(
                {"sources": format_sources(docs), "question": question}, child
            )
        except Exception as exc:
            raise self._llm_error(exc, question, docs) from exc
        return self._generated(question, docs, raw)

    def stream(  # type: ignore[override]
        self, input: QAInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[str]:
        """Yield the answer text chunk by chunk as the model produces it.

        Use [`stream_result`][langchain_fusion.qa.QAChain.stream_result] to also get the
        sources and the verified final result.

        Example:
            >>> from langchain_core.runnables import RunnableLambda
            >>> docs = [Document("Paris is the capital of France."),
            ...         Document("Berlin is in Germany.")]
            >>> retriever = RunnableLambda(lambda question: docs)
            >>> from langchain_core.language_models import FakeListChatModel
            >>> chain = build_qa_chain(retriever, FakeListChatModel(responses=["Paris"]))
            >>> list(chain.stream("Capital of France?"))
            ['P', 'a', 'r', 'i', 's']

        """
        for event in self.stream_result(input, config):
            if event.kind == "token":
                yield event.token

    def stream_result(
        self, input: QAInput, config: RunnableConfig | None = None
    ) -> Iterator[QAEvent]:
        """Yield a ``"sources"`` event, the answer's ``"token"`` events, then the ``"result"``.

        Args:
            input: The question, or a mapping with a ``"question"`` key.
            config: Runnable config (callbacks, tags, ...).

        Yields:
            [`QAEvent`][langchain_fusion.qa.QAEvent]s.

        Raises:
            ValueError: If the question is invalid (before anything is yielded).
            LLMError: If the chat model fails.

        Example:
            >>> from langchain_core.runnables import RunnableLambda
            >>> docs = [Document("Paris is the capital of France."),
            ...         Document("Berlin is in Germany.")]
            >>> retriever = RunnableLambda(lambda question: docs)
            >>> from langchain_core.language_models import FakeListChatModel
            >>> chain = build_qa_chain(retriever, FakeListChatModel(responses=["Paris [1]"]))
            >>> events = list(chain.stream_result("Capital of France?"))
            >>> "".join(e.token for e in events if e.kind == "token")
            'Paris [1]'
            >>> events[-1].result.verification.ok
            True

        """
        question = self._question(input)
        config = ensure_config(config)
        run_manager = get_callback_manager_for_config(config).on_chain_start(
            None,
            {"input": question},
            run_type="chain",
            name=config.get("run_name") or self.get_name(),
            run_id=config.pop("run_id", None),
        )
        try:
            child = patch_config(config, callbacks=run_manager.get_child())
            docs = self._retrieve(question, child)
            yield QAEvent("sources", sources=list(docs))
            if self.answer_chain is None or not docs:
                result = self._extractive(question, docs)
                yield QAEvent("token", token=result.answer)
            else:
                inputs = {"sources": format_sources(docs), "question": question}
                chunks: list[str] = []
                try:
                    for chunk in self.answer_chain.stream(inputs, child):
                        if chunk:
                            chunks.append(chunk)
                            yield QAEvent("token", token=chunk)
                except Exception as exc:
                    raise self._llm_error(exc, question, docs) from exc
                result = self._generated(question, docs, "".join(chunks))
        except BaseException as exc:
            run_manager.on_chain_error(exc)
            raise
        run_manager.on_chain_end(result)
        yield QAEvent("result", result=result)

    def transform(
        self, input: Iterator[QAInput], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[QAResult]:
        """Inside an LCEL pipeline: collect the question, then yield the full result."""
        yield self.invoke(_collect(input), config)

    # ------------------------------------------------------------------ async API

    async def ainvoke(
        self, input: QAInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> QAResult:
        """Async [`invoke`][langchain_fusion.qa.QAChain.invoke].

        Example:
            >>> from langchain_core.runnables import RunnableLambda
            >>> docs = [Document("Paris is the capital of France."),
            ...         Document("Berlin is in Germany.")]
            >>> retriever = RunnableLambda(lambda question: docs)
            >>> import asyncio
            >>> chain = build_qa_chain(retriever, llm=False)
            >>> asyncio.run(chain.ainvoke("What is the capital of France?")).mode
            'extractive'

        """
        return await self._acall_with_config(self._ainvoke, input, config, run_type="chain")

    async def _ainvoke(
        self,
        input: QAInput,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> QAResult:
        question = self._question(input)
        child = patch_config(config, callbacks=run_manager.get_child())
        docs = await self._aretrieve(question, child)
        if self.answer_chain is None or not docs:
            return self._extractive(question, docs)
        inputs = {"sources": format_sources(docs), "question": question}
        try:
            raw = await self.answer_chain.ainvoke(inputs, child)
        except Exception as exc:
            raise self._llm_error(exc, question, docs) from exc
        return self._generated(question, docs, raw)

    async def astream(  # type: ignore[override]
        self, input: QAInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[str]:
        """Async [`stream`][langchain_fusion.qa.QAChain.stream]: yield answer text chunks.

        Example:
            >>> from langchain_core.runnables import RunnableLambda
            >>> docs = [Document("Paris is the capital of France."),
            ...         Document("Berlin is in Germany.")]
            >>> retriever = RunnableLambda(lambda question: docs)
            >>> import asyncio
            >>> from langchain_core.language_models import FakeListChatModel
            >>> chain = build_qa_chain(retriever, FakeListChatModel(responses=["ok"]))
            >>> async def main():
            ...     return [t async for t in chain.astream("Capital of France?")]
            >>> asyncio.run(main())
            ['o', 'k']

        """
        async for event in self.astream_result(input, config):
            if event.kind == "token":
                yield event.token

    async def astream_result(
        self, input: QAInput, config: RunnableConfig | None = None
    ) -> AsyncIterator[QAEvent]:
        """Async [`stream_result`][langchain_fusion.qa.QAChain.stream_result].

        Example:
            >>> from langchain_core.runnables import RunnableLambda
            >>> docs = [Document("Paris is the capital of France."),
            ...         Document("Berlin is in Germany.")]
            >>> retriever = RunnableLambda(lambda question: docs)
            >>> import asyncio
            >>> chain = build_qa_chain(retriever, llm=False)
            >>> async def main():
            ...     return [e.kind async for e in chain.astream_result("Capital of France?")]
            >>> asyncio.run(main())
            ['sources', 'token', 'result']

        """
        question = self._question(input)
        config = ensure_config(config)
        run_manager = await get_async_callback_manager_for_config(config).on_chain_start(
            None,
            {"input": question},
            run_type="chain",
            name=config.get("run_name") or self.get_name(),
            run_id=config.pop("run_id", None),
        )
        try:
            child = patch_config(config, callbacks=run_manager.get_child())
            docs = await self._aretrieve(question, child)
            yield QAEvent("sources", sources=list(docs))
            if self.answer_chain is None or not docs:
                result = self._extractive(question, docs)
                yield QAEvent("token", token=result.answer)
            else:
                inputs = {"sources": format_sources(docs), "question": question}
                chunks: list[str] = []
                try:
                    async for chunk in self.answer_chain.astream(inputs, child):
                        if chunk:
                            chunks.append(chunk)
                            yield QAEvent("token", token=chunk)
                except Exception as exc:
                    raise self._llm_error(exc, question, docs) from exc
                result = self._generated(question, docs, "".join(chunks))
        except BaseException as exc:
            await run_manager.on_chain_error(exc)
            raise
        await run_manager.on_chain_end(result)
        yield QAEvent("result", result=result)

    async def atransform(
        self, input: AsyncIterator[QAInput], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[QAResult]:
        """Inside an async LCEL pipeline: collect the question, then yield the full result."""
        yield await self.ainvoke(_collect([x async for x in input]), config)

    # ------------------------------------------------------------------ steps

    def _question(self, input: QAInput) -> str:
        if isinstance(input, Mapping):
            if "question" not in input:
                raise ValueError(
                    f"input mapping must have a 'question' key, got keys {sorted(input)}"
                )
            input = input["question"]
        if not isinstance(input, str):
            raise TypeError(f"question must be a str, got {type(input).__name__}")
        if not input.strip():
            raise ValueError(f"question must not be empty or whitespace, got {input!r}")
        if len(input) > self.max_question_chars:
            raise ValueError(
                f"question is {len(input)} characters long; the limit is "
                f"{self.max_question_chars} (max_question_chars)"
            )
        return input.strip()

    def _retrieve(self, question: str, config: RunnableConfig) -> list[Document]:
        docs = self.retriever.invoke(question, config, **self._retriever_kwargs)
        return self._check_docs(docs)

    async def _aretrieve(self, question: str, config: RunnableConfig) -> list[Document]:
        docs = await self.retriever.ainvoke(question, config, **self._retriever_kwargs)
        return self._check_docs(docs)

    def _check_docs(self, docs: Any) -> list[Document]:
        if not isinstance(docs, list) or not all(isinstance(d, Document) for d in docs):
            raise TypeError(
                f"retriever {type(self.retriever).__name__} must return a list of Documents, "
                f"got {type(docs).__name__}"
            )
        return docs if self.k is None else docs[: self.k]

    def _extractive(self, question: str, docs: list[Document]) -> QAResult:
        extract = extractive_answer(
            question,
            docs,
            max_sentences=self.max_sentences,
            embeddings=self.embeddings,
            min_similarity=self.min_similarity,
        )
        answer = f"{NO_LLM_NOTICE}\n\n{extract.text}" if self.llm is None else extract.text
        return QAResult(
            question=question,
            answer=answer,
            sources=docs,
            mode="extractive",
            raw_answer=answer,
            extractive=extract,
        )

    def _generated(self, question: str, docs: list[Document], raw: str) -> QAResult:
        report = (
            verify_answer(raw, docs, banned_phrases=self.banned_phrases) if self.verify else None
        )
        return QAResult(
            question=question,
            answer=report.text if report is not None else raw,
            sources=docs,
            mode="generated",
            llm=self.model_name,
            verification=report,
            raw_answer=raw,
        )

    def _llm_error(self, exc: Exception, question: str, docs: list[Document]) -> LLMError:
        return LLMError(self.model_name or "?", exc, question=question, sources=docs)


def build_qa_chain(
    retriever: Runnable[str, list[Document]],
    llm: BaseChatModel | str | Literal[False] | None = None,
    *,
    k: int | None = None,
    verify: bool = True,
    prompt: BasePromptTemplate[Any] = QA_PROMPT,
    max_question_chars: int = DEFAULT_MAX_QUESTION_CHARS,
    max_sentences: int = 3,
    embeddings: Embeddings | Literal[False] | None = None,
    min_similarity: float | Literal["auto"] | None = "auto",
    banned_phrases: Sequence[str] = (),
) -> QAChain:
    """Build a question-answering chain over ``retriever``.

    Args:
        retriever: Any LangChain retriever (``FusionRetriever``, ``vectorstore.as_retriever()``,
            ...) or Runnable from a query string to a list of Documents.
        llm: A chat model, a model string (``"openai:gpt-4o-mini"``, ``"anthropic:..."``),
            ``False`` for no model, or None for the default (see
            [`resolve_llm`][langchain_fusion.qa.resolve_llm]: ``gpt-4o-mini`` when
            ``OPENAI_API_KEY`` is set, else offline extractive answers).
        k: Give the model at most this many documents (a ``FusionRetriever`` is also asked for
            exactly ``k``); None: all the retriever returns. When the retriever returns nothing
            the model is not called and the answer says no sources were found.
        verify: Check the generated answer against the sources (see
            [`verify_answer`][langchain_fusion.verify.verify_answer]).
        prompt: The prompt; must take ``sources`` and ``question``.
        max_question_chars: Longer questions are rejected with a ValueError.
        max_sentences: Sentences in an extractive answer.
        embeddings: The embedding model that ranks sentences in extractive answers (together
            with BM25, see [`extractive_answer`][langchain_fusion.extractive.extractive_answer]).
            None: the retriever's own (a ``FusionRetriever``'s index or vector store), if any;
            ``False``: rank by word coverage alone.
        min_similarity: An extractive answer is also given when a sentence's cosine similarity
            to the question reaches this. ``"auto"``: 0.7 with the bundled all-MiniLM-L6-v2
            (``LocalEmbeddings()``), else None (word coverage decides alone).
        banned_phrases: Phrases a generated answer must not contain; the verifier reports them
            (see [`verify_answer`][langchain_fusion.verify.verify_answer]).

    Returns:
        A [`QAChain`][langchain_fusion.qa.QAChain].

    Raises:
        TypeError: If ``retriever`` is not a Runnable, or ``llm`` has a wrong type.
        ValueError: If ``k``, ``max_question_chars`` or ``max_sentences`` is out of range, or
            ``prompt`` lacks a variable.

    Example:
        >>> from langchain_core.runnables import RunnableLambda
        >>> docs = [Document("Paris is the capital of France."),
        ...         Document("Berlin is in Germany.")]
        >>> retriever = RunnableLambda(lambda question: docs)
        >>> from langchain_core.language_models import FakeListChatModel
        >>> model = FakeListChatModel(responses=['It is Paris [1]: "Paris is the capital" [1].'])
        >>> chain = build_qa_chain(retriever, model, k=1)
        >>> result = chain.invoke("What is the capital of France?")
        >>> print(result.answer)
        It is Paris [1]: "Paris is the capital" [1].
        >>> result.mode, result.llm, len(result.sources)
        ('generated', 'FakeListChatModel', 1)

    """
    return QAChain(
        retriever,
        llm,
        k=k,
        verify=verify,
        prompt=prompt,
        max_question_chars=max_question_chars,
        max_sentences=max_sentences,
        embeddings=embeddings,
        min_similarity=min_similarity,
        banned_phrases=banned_phrases,
    )


def _sentence_embeddings(
    retriever: Runnable[str, list[Document]], embeddings: Embeddings | Literal[False] | None
) -> Embeddings | None:
    """Return the model that ranks extractive sentences: given, the retriever's, or None."""
    if embeddings is False:
        return None
    if embeddings is not None:
        if not isinstance(embeddings, Embeddings):
            raise TypeError(
                "embeddings must be a LangChain Embeddings model, False or None, got "
                f"{type(embeddings).__name__}"
            )
        return embeddings
    for attr in ("index", "vectorstore"):  # a FusionRetriever's HybridIndex or vector store
        try:
            found = getattr(getattr(retriever, attr, None), "embeddings", None)
        except Exception:  # a store whose embeddings property raises: no model from it
            continue
        if isinstance(found, Embeddings):
            return found
    return None


def _min_similarity(
    embeddings: Embeddings | None, value: float | Literal["auto"] | None
) -> float | None:
    if value == "auto":
        if embeddings is None:
            return None
        from langchain_fusion.dense.embeddings import LocalEmbeddings

        bundled = isinstance(embeddings, LocalEmbeddings) and embeddings.model_path is None
        return DEFAULT_MIN_SIMILARITY if bundled else None
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0
    ):
        raise ValueError(
            f"min_similarity must be 'auto', None or a number in [0, 1], got {value!r}"
        )
    return None if value is None else float(value)


def _retriever_kwargs(retriever: Runnable[str, list[Document]], k: int | None) -> dict[str, Any]:
    """Per-call kwargs that make ``retriever`` return ``k`` documents, when it understands them."""
    return {"k": k} if k is not None and accepts_call_option(retriever, "k") else {}


def _collect(chunks: Any) -> QAInput:
    final: Any = None
    for chunk in chunks:
        if final is None:
            final = chunk
        elif isinstance(final, str) and isinstance(chunk, str):
            final += chunk
        elif isinstance(final, Mapping) and isinstance(chunk, Mapping):
            final = {**final, **chunk}
        else:
            final = chunk
    if final is None:
        raise ValueError("the chain received no input")
    result: QAInput = final
    return result
