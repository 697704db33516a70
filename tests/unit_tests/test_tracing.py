"""Wrapped retrievers run as children of the fusion run (LangSmith, callback handlers)."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document

from langchain_fusion import BM25Retriever, FusionRetriever
from tests.fakes import BagOfWordsEmbedding, FixedRetriever

DOCS = [
    Document("error E-217 means the battery is cold", id="a"),
    Document("reset the BMS by holding the button", id="b"),
    Document("the pump primes in two minutes", id="c"),
]


class Recorder(BaseCallbackHandler):
    """Records every retriever run: its name, run id, parent run id and tags."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []

    def on_retriever_start(
        self,
        serialized: dict[str, Any],
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.runs.append(
            {"name": kwargs.get("name"), "id": run_id, "parent": parent_run_id, "tags": tags or []}
        )


def _fusion() -> FusionRetriever:
    first = FixedRetriever(docs=DOCS[:2])
    second = BM25Retriever.from_documents(DOCS)  # searched directly, not through invoke
    third = FixedRetriever(docs=DOCS[1:])
    return FusionRetriever(retrievers=[first, second, third], names=["first", "bm25", "third"])


def _check(recorder: Recorder) -> None:
    root, *children = recorder.runs
    assert root["name"] == "FusionRetriever" and root["parent"] is None
    assert len(children) == 2
    assert all(c["parent"] == root["id"] for c in children)
    assert sorted(tag for c in children for tag in c["tags"]) == ["first", "third"]


def test_wrapped_retrievers_are_child_runs() -> None:
    recorder = Recorder()
    docs = _fusion().invoke("E-217", config={"callbacks": [recorder]})
    assert docs
    _check(recorder)


def test_wrapped_retrievers_are_child_runs_async() -> None:
    recorder = Recorder()
    docs = asyncio.run(_fusion().ainvoke("E-217", config={"callbacks": [recorder]}))
    assert docs
    _check(recorder)


def test_nested_fusion_runs_nest() -> None:
    inner = _fusion()
    outer = FusionRetriever(retrievers=[inner, FixedRetriever(docs=DOCS)], names=["inner", "fixed"])
    recorder = Recorder()
    outer.invoke("reset", config={"callbacks": [recorder]})
    by_id = {r["id"]: r for r in recorder.runs}
    root = recorder.runs[0]
    inner_run = next(r for r in recorder.runs if "inner" in r["tags"])
    assert inner_run["parent"] == root["id"] and inner_run["name"] == "FusionRetriever"
    grandchildren = [r for r in recorder.runs if r["parent"] == inner_run["id"]]
    assert {"first", "third"} <= {tag for r in grandchildren for tag in r["tags"]}
    assert all(r["parent"] in by_id for r in recorder.runs[1:])


def test_feedback_round_keeps_the_parent() -> None:
    hybrid = FusionRetriever.from_documents(DOCS, BagOfWordsEmbedding())
    retriever = FusionRetriever(
        retrievers=[*hybrid.sources, FixedRetriever(docs=DOCS)],
        names=["dense", "bm25", "fixed"],
        feedback_docs=1,
    )
    recorder = Recorder()
    retriever.invoke("battery cold", config={"callbacks": [recorder]})
    root, *children = recorder.runs
    assert [c["tags"] for c in children] == [["fixed"]]
    assert children[0]["parent"] == root["id"]


def test_gather_outside_a_run_searches_every_source() -> None:
    retriever = _fusion()
    assert len(retriever.gather("E-217")) == 3
