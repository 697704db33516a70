from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from langchain_fusion import FusionRetriever
from langchain_fusion.evaluation import load_beir
from langchain_fusion.evaluation.labels import (
    QUESTION_PROMPT,
    generate_labels,
    load_labels,
    parse_question,
    save_labels,
)
from langchain_fusion.evaluation.tune import tune


class ScriptedChat(BaseChatModel):
    """Answers from the passage: ``reply(passage, attempt) -> text``; records the prompts."""

    replies: dict[str, list[str]]
    default: str = "What is described in passage {word}?"
    prompts: list[list[BaseMessage]]

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.prompts.append(messages)
        passage = str(messages[-1].content)
        queue = self.replies.get(passage)
        if queue:
            text = queue.pop(0)
        else:
            codes = re.findall(r"code\d+", passage)
            word = codes[0] if codes else passage.split()[-1]
            text = self.default.format(word=word)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


def _docs(n: int = 20) -> list[Document]:
    return [
        Document(f"Chunk number {i} explains the procedure code{i:02d} in detail.", id=f"c{i}")
        for i in range(n)
    ]


# ------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("What is BM25?", "What is BM25?"),
        ("1. What is BM25?", "What is BM25?"),
        ("2) How does fusion work?", "How does fusion work?"),
        ("- How does fusion work?", "How does fusion work?"),
        ('"How does fusion work?"', "How does fusion work?"),
        ("\u201cHow does fusion work?\u201d", "How does fusion work?"),
        ("Question: How does fusion work?", "How does fusion work?"),
        ("**Question 1:** How does fusion work?", "How does fusion work?"),
        ("Q: How does fusion work?", "How does fusion work?"),
        ("Sure! Here is a question:\n\nHow does fusion work?", "How does fusion work?"),
        ("Here's one:\n1. How does   fusion\twork?", "How does fusion work?"),
        ("How does fusion work? It combines scores.", "How does fusion work?"),
        ("Which retriever handles error codes best", "Which retriever handles error codes best"),
    ],
)
def test_parse_question(reply: str, expected: str) -> None:
    assert parse_question(reply) == expected


@pytest.mark.parametrize("reply", ["", "   \n ", "Here is a question:", "Why?", "x " * 200])
def test_parse_question_rejects(reply: str) -> None:
    assert parse_question(reply) is None


def test_parse_question_length_limit() -> None:
    q = "What " + "very " * 20 + "long question is this?"
    assert parse_question(q) == q
    assert parse_question(q, max_chars=50) is None


# ------------------------------------------------------------------------------ generation


def test_one_question_per_sampled_chunk() -> None:
    llm = ScriptedChat(replies={}, prompts=[])
    docs = _docs()
    queries, qrels = generate_labels(docs, llm, n=5, seed=3, show_progress=False)
    assert len(queries) == 5 and list(queries) == [f"gen-{i}" for i in range(5)]
    for qid, question in queries.items():
        (doc_id,) = qrels[qid]
        assert qrels[qid][doc_id] == 1
        number = int(doc_id[1:])
        assert question == f"What is described in passage code{number:02d}?"
    # the prompt: system instructions, then the chunk text alone
    first = llm.prompts[0]
    assert first[0].content == QUESTION_PROMPT
    assert str(first[1].content).startswith("Chunk number")
    # same seed, same sample; another seed, another sample
    again, _ = generate_labels(
        docs, ScriptedChat(replies={}, prompts=[]), n=5, seed=3, show_progress=False
    )
    other, _ = generate_labels(
        docs, ScriptedChat(replies={}, prompts=[]), n=5, seed=4, show_progress=False
    )
    assert again == queries and other != queries


def test_more_than_available_takes_every_long_enough_chunk() -> None:
    docs = [*_docs(3), Document("tiny", id="t")]
    queries, qrels = generate_labels(
        docs, ScriptedChat(replies={}, prompts=[]), n=50, show_progress=False
    )
    assert sorted(d for q in qrels.values() for d in q) == ["c0", "c1", "c2"]
    assert len(queries) == 3


def test_bad_replies_are_retried_then_dropped_with_a_warning() -> None:
    docs = _docs(3)
    replies = {
        docs[0].page_content: ["Sure, here it is:", "1. Which code is code00 about?"],
        docs[1].page_content: ["", "   "],  # never usable
    }
    llm = ScriptedChat(replies=replies, prompts=[])
    with pytest.warns(UserWarning, match="1 of 3 chunks got no usable question"):
        queries, qrels = generate_labels(docs, llm, n=3, show_progress=False)
    assert list(qrels.values()) == [{"c0": 1}, {"c2": 1}]
    assert queries["gen-0"] == "Which code is code00 about?"
    assert len(llm.prompts) == 3 + 2  # three first attempts, two retries


def test_duplicate_questions_are_dropped() -> None:
    docs = _docs(3)
    llm = ScriptedChat(replies={}, default="What does this chunk explain?", prompts=[])
    with pytest.warns(UserWarning, match="2 duplicate questions were dropped"):
        queries, _ = generate_labels(docs, llm, n=3, show_progress=False)
    assert list(queries.values()) == ["What does this chunk explain?"]


def test_id_key_and_missing_ids() -> None:
    docs = [
        Document(f"A long enough chunk of text about code{i} for one question.", metadata={"k": i})
        for i in range(3)
    ]
    with pytest.raises(ValueError, match="has no id"):
        generate_labels(docs, ScriptedChat(replies={}, prompts=[]), show_progress=False)
    _, qrels = generate_labels(
        docs, ScriptedChat(replies={}, prompts=[]), id_key="k", show_progress=False
    )
    assert sorted(d for q in qrels.values() for d in q) == ["0", "1", "2"]
    with pytest.raises(ValueError, match="no metadata\\['nope'\\]"):
        generate_labels(
            docs, ScriptedChat(replies={}, prompts=[]), id_key="nope", show_progress=False
        )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 0}, ValueError, "n must be an integer >= 1, got 0"),
        ({"max_attempts": 0}, ValueError, "max_attempts must be an integer >= 1"),
        ({"min_chars": 10_000}, ValueError, "no document has at least min_chars=10000"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        generate_labels(
            _docs(2), ScriptedChat(replies={}, prompts=[]), show_progress=False, **kwargs
        )


def test_non_documents_and_hopeless_model() -> None:
    with pytest.raises(TypeError, match=r"documents\[0\] must be a Document"):
        generate_labels(["text"], ScriptedChat(replies={}, prompts=[]))  # type: ignore[list-item]
    llm = ScriptedChat(replies={}, default="", prompts=[])
    with pytest.raises(ValueError, match="no usable question for any of the 2 chunks"):
        generate_labels(_docs(2), llm, show_progress=False)


# ------------------------------------------------------------------------------ files


def test_save_and_load_beir_files(tmp_path: Path) -> None:
    docs = _docs(4)
    queries, qrels = generate_labels(
        docs, ScriptedChat(replies={}, prompts=[]), n=3, show_progress=False
    )
    folder = save_labels(tmp_path / "labels", queries, qrels, split="dev", documents=docs)
    lines = (folder / "queries.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"_id": "gen-0", "text": queries["gen-0"]}
    tsv = (folder / "qrels" / "dev.tsv").read_text().splitlines()
    assert tsv[0] == "query-id\tcorpus-id\tscore" and len(tsv) == 4
    assert load_labels(folder, "dev") == (queries, qrels)
    ds = load_beir(folder, "dev")
    assert [d.page_content for d in ds.corpus] == [d.page_content for d in docs]
    assert ds.queries == queries and ds.qrels == qrels


def test_save_labels_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split must be a plain name"):
        save_labels(tmp_path, {"q": "x"}, {"q": {"d": 1}}, split="../evil")
    with pytest.raises(ValueError, match="not in queries"):
        save_labels(tmp_path, {"q": "x"}, {"r": {"d": 1}})
    save_labels(tmp_path, {"q": "x", "r": "y"}, {"q": {"d": 1}, "r": {"e": 1}})
    (tmp_path / "queries.jsonl").write_text('{"_id": "q", "text": "x"}\n')
    with pytest.raises(ValueError, match=r"missing from queries\.jsonl"):
        load_labels(tmp_path)


def test_generated_labels_drive_tuning() -> None:
    """Questions quote the chunk's code word, so keyword search (alpha=0) is perfect."""
    docs = _docs(20)
    queries, qrels = generate_labels(
        docs, ScriptedChat(replies={}, prompts=[]), n=10, show_progress=False
    )
    r = FusionRetriever.from_documents(docs, DeterministicFakeEmbedding(size=16))
    report = tune(r, queries, qrels, grid={"alpha": [0.0, 1.0]}, show_progress=False)
    assert report.best["alpha"] == 0.0 and report.best_score == 1.0
