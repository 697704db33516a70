"""A retriever as an agent tool: numbered, scored passages the model can cite.

[`create_fusion_tool`][langchain_fusion.tools.create_fusion_tool] wraps any LangChain retriever
(typically a [`FusionRetriever`][langchain_fusion.FusionRetriever]) in a ``StructuredTool`` with
one argument, ``query``. The tool returns the passages formatted by
[`format_sources`][langchain_fusion.formatting.format_sources]
(``[1] (file, p. 3, score 0.83) text``) and, as the ToolMessage's ``artifact``, the Documents
themselves, so an application can show the sources the agent read.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.documents import Document
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from langchain_fusion.formatting import format_sources
from langchain_fusion.sources import accepts_call_option

__all__ = ["DEFAULT_TOOL_DESCRIPTION", "SearchDocumentsInput", "create_fusion_tool"]

DEFAULT_TOOL_DESCRIPTION = (
    "Search the document collection (hybrid keyword + semantic search). Input: a question or "
    "keywords. Returns the most relevant passages, numbered [1], [2], ... with their file, page "
    "and relevance score. Cite the passages you use by their number."
)
"""The tool description used when none is given."""

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class SearchDocumentsInput(BaseModel):
    """Arguments of the search tool.

    Example:
        >>> SearchDocumentsInput(query="capital of France").query
        'capital of France'

    """

    query: str = Field(description="What to search for: a question or keywords.")


def create_fusion_tool(
    retriever: Runnable[str, list[Document]],
    *,
    name: str = "search_documents",
    description: str = DEFAULT_TOOL_DESCRIPTION,
    k: int | None = None,
    max_chars: int | None = None,
) -> BaseTool:
    """Turn a retriever into a tool an agent can call with ``{"query": ...}``.

    Args:
        retriever: Any LangChain retriever or Runnable from a query string to Documents.
        name: Tool name shown to the model (letters, digits, ``_`` and ``-``; at most 64, as
            OpenAI and Anthropic require).
        description: What the tool does, for the model.
        k: Return at most this many passages (a ``FusionRetriever`` is asked for exactly ``k``).
        max_chars: Cut each passage to about this many characters (None: no limit).

    Returns:
        A ``StructuredTool`` with ``response_format="content_and_artifact"``: invoked with a
        tool call it returns a ToolMessage whose ``content`` is the formatted passages and whose
        ``artifact`` is the list of Documents; invoked with ``{"query": ...}`` it returns the
        text. An empty query gives the model an error message instead of raising.

    Raises:
        TypeError: If ``retriever`` is not a Runnable.
        ValueError: If ``name``, ``description``, ``k`` or ``max_chars`` is invalid.

    Example:
        >>> from langchain_core.runnables import RunnableLambda
        >>> docs = [Document("Paris is the capital of France.",
        ...                  metadata={"file_name": "geo.pdf", "page": 2})]
        >>> tool = create_fusion_tool(RunnableLambda(lambda query: docs))
        >>> print(tool.invoke({"query": "capital of France"}))
        [1] (geo.pdf, p. 2) Paris is the capital of France.
        >>> message = tool.invoke({"type": "tool_call", "id": "call_1",
        ...                        "name": tool.name, "args": {"query": "France"}})
        >>> message.artifact[0].metadata["page"]
        2

    """
    if not isinstance(retriever, Runnable):
        raise TypeError(
            "retriever must be a LangChain retriever (a Runnable from str to list[Document]), "
            f"got {type(retriever).__name__}"
        )
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise ValueError(
            f"name must be 1-64 letters, digits, '_' or '-' (a valid tool name), got {name!r}"
        )
    if not isinstance(description, str) or not description.strip():
        raise ValueError(f"description must be a non-empty string, got {description!r}")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValueError(f"k must be None or an int >= 1, got {k!r}")
    if max_chars is not None and (
        isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1
    ):
        raise ValueError(f"max_chars must be None or an int >= 1, got {max_chars!r}")
    call_kwargs = {"k": k} if k is not None and accepts_call_option(retriever, "k") else {}

    def render(query: str, docs: Any) -> tuple[str, list[Document]]:
        if not isinstance(docs, list) or not all(isinstance(d, Document) for d in docs):
            raise TypeError(
                f"retriever {type(retriever).__name__} must return a list of Documents, "
                f"got {type(docs).__name__}"
            )
        docs = docs if k is None else docs[:k]
        if not docs:
            return f"No documents found for {query!r}.", []
        return format_sources(docs, with_scores=True, max_chars=max_chars), docs

    def check(query: str) -> str:
        if not query.strip():
            raise ToolException("query must not be empty: pass a question or keywords.")
        return query.strip()

    # The tool passes its run config (callbacks, tags) in through the annotated parameter, so
    # the retrieval appears as a child run of the tool call in traces.
    def search(query: str, config: RunnableConfig) -> tuple[str, list[Document]]:
        query = check(query)
        return render(query, retriever.invoke(query, config, **call_kwargs))

    async def asearch(query: str, config: RunnableConfig) -> tuple[str, list[Document]]:
        query = check(query)
        return render(query, await retriever.ainvoke(query, config, **call_kwargs))

    return StructuredTool.from_function(
        func=search,
        coroutine=asearch,
        name=name,
        description=description,
        args_schema=SearchDocumentsInput,
        response_format="content_and_artifact",
        handle_tool_error=True,
    )
