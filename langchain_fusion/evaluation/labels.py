"""Generate relevance labels for any corpus with a chat model, to tune fusion without BEIR.

`generate_labels` samples chunks, asks a chat model for one question that each chunk answers,
and returns ``(queries, qrels)`` with the chunk as the single relevant document of its question.
`save_labels` writes them in BEIR format (``queries.jsonl``, ``qrels/<split>.tsv``, optionally
``corpus.jsonl``) so that `load_beir`, `tune` and ``langchain-fusion tune --queries/--qrels``
work on them.

Such labels are easier than human ones (the question is written from the chunk, often reusing
its words, which favours BM25) and judge only one document per question; use them to compare
settings on your own corpus, not as absolute numbers.

Example:
    >>> from langchain_core.documents import Document
    >>> from langchain_core.language_models import GenericFakeChatModel
    >>> from langchain_core.messages import AIMessage
    >>> llm = GenericFakeChatModel(messages=iter([AIMessage("1. What does error E-217 mean?")]))
    >>> queries, qrels = generate_labels(
    ...     [Document("Error E-217: the battery is too cold to charge.", id="c1")],
    ...     llm, n=1, min_chars=10, show_progress=False)
    >>> queries, qrels
    ({'gen-0': 'What does error E-217 mean?'}, {'gen-0': {'c1': 1}})

"""

from __future__ import annotations

import csv
import json
import random
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from langchain_fusion.evaluation.beir import load_qrels, load_queries

__all__ = [
    "QUESTION_PROMPT",
    "generate_labels",
    "load_labels",
    "parse_question",
    "save_labels",
]

QUESTION_PROMPT = (
    "You write search queries for testing a search engine. Read the passage and write ONE "
    "question that the passage answers, the way a user who has not seen the passage would ask "
    "it. Do not copy long phrases from the passage. Reply with the question only: no preamble, "
    "no numbering, no quotes, no answer."
)
"""The system prompt of `generate_labels` (the passage follows as the user message)."""

_PREFIX = re.compile(
    r"""^\s*(?:
        (?:\*\*|__)?(?:question|query|q)\s*\d*\s*[:.)-]\s*(?:\*\*|__)?   # "Question:", "Q1."
      | \d+\s*[.):-]\s+                                               # "1. ", "2) "
      | [-*•]\s+                                                      # bullets
      | \#+\s*                                                        # markdown headings
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_PREAMBLE = re.compile(
    r"^\s*(?:sure|certainly|of course|okay|ok|here(?:'s| is| are)|the question|a question)\b",
    re.IGNORECASE,
)
_QUOTES = "\"'`«»*_ \u201c\u201d\u2018\u2019"


def _message_text(message: Any) -> str:
    content = message.content if isinstance(message, BaseMessage) else message
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
        return "".join(parts)
    return str(content)


def parse_question(text: str, *, max_chars: int = 300) -> str | None:
    r"""Extract one clean question from a model reply, or None if there is none.

    Skips preamble lines ("Sure! Here is a question:"), strips numbering, bullets, a
    ``Question:`` label, surrounding quotes and markdown emphasis, and collapses whitespace.
    Rejects an empty result, one longer than ``max_chars``, or one shorter than three words.

    Example:
        >>> parse_question('Sure! Here is a question:\n\n1. "What is BM25?"')
        'What is BM25?'
        >>> parse_question("**Question:** How cold is too cold for charging?")
        'How cold is too cold for charging?'
        >>> parse_question("") is None, parse_question("x" * 400) is None
        (True, True)

    """
    if not isinstance(text, str):
        return None
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in lines:
        if _PREAMBLE.match(line) and (line.endswith(":") or "?" not in line):
            continue
        cleaned = line
        for _ in range(3):  # "1. **Question:** ..." has several layers
            stripped = _PREFIX.sub("", cleaned, count=1).strip().strip(_QUOTES).strip()
            if stripped == cleaned:
                break
            cleaned = stripped
        cleaned = " ".join(cleaned.split())
        if "?" in cleaned:  # drop an answer the model appended after the question
            cleaned = cleaned[: cleaned.index("?") + 1]
        if not cleaned or len(cleaned) > max_chars or len(cleaned.split()) < 3:
            return None
        return cleaned
    return None


def _doc_id(doc: Document, id_key: str | None, position: int) -> str:
    if id_key is not None:
        if id_key not in doc.metadata:
            raise ValueError(
                f"documents[{position}] has no metadata[{id_key!r}] (its keys: "
                f"{sorted(doc.metadata)}); pass id_key naming a field every document has"
            )
        return str(doc.metadata[id_key])
    if not doc.id:
        raise ValueError(
            f"documents[{position}] has no id (Document.id is {doc.id!r}); labels need stable "
            "document ids: set Document.id (ingest and load_beir do) or pass id_key='<field>'"
        )
    return doc.id


def generate_labels(
    documents: Sequence[Document],
    llm: BaseChatModel,
    *,
    n: int = 50,
    seed: int = 0,
    show_progress: bool = True,
    prompt: str = QUESTION_PROMPT,
    id_key: str | None = None,
    min_chars: int = 50,
    max_chars: int = 300,
    max_attempts: int = 2,
    max_concurrency: int | None = None,
) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Ask a chat model for one question per sampled chunk; return ``(queries, qrels)``.

    Args:
        documents: The chunks (with ``Document.id`` or ``metadata[id_key]``).
        llm: Any LangChain chat model.
        n: How many chunks to sample (all of them when there are fewer).
        seed: Sampling seed (the same seed samples the same chunks).
        show_progress: Show a progress bar.
        prompt: The system prompt.
        id_key: Read document ids from ``metadata[id_key]`` instead of ``Document.id``.
        min_chars: Chunks shorter than this are not sampled (headers, page numbers...).
        max_chars: Longest question accepted.
        max_attempts: Calls per chunk before giving up on it (a reply without a usable
            question is retried).
        max_concurrency: Parallel model calls (None: LangChain's default).

    Returns:
        ``({query_id: question}, {query_id: {doc_id: 1}})``, query ids ``gen-0``, ``gen-1``...
        Chunks whose replies never parse, and duplicate questions, are dropped with a warning.

    Raises:
        ValueError: If ``n`` or ``max_attempts`` is not >= 1, no chunk is long enough, a sampled
            chunk has no id, or no reply could be parsed.
        TypeError: If ``documents`` holds something other than Documents.

    Example:
        >>> from langchain_core.language_models import GenericFakeChatModel
        >>> from langchain_core.messages import AIMessage
        >>> llm = GenericFakeChatModel(messages=iter([AIMessage("Here is one:"),
        ...                                           AIMessage("How do panels work?")]))
        >>> docs = [Document("Solar panels turn sunlight into electricity.", id="a")]
        >>> generate_labels(docs, llm, n=5, min_chars=10, show_progress=False)
        ({'gen-0': 'How do panels work?'}, {'gen-0': {'a': 1}})

    """
    for name, value in (("n", n), ("max_attempts", max_attempts)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    docs = list(documents)
    for i, doc in enumerate(docs):
        if not isinstance(doc, Document):
            raise TypeError(f"documents[{i}] must be a Document, got {type(doc).__name__}")
    eligible = [i for i, d in enumerate(docs) if len(d.page_content.strip()) >= min_chars]
    if not eligible:
        raise ValueError(
            f"no document has at least min_chars={min_chars} characters of text "
            f"({len(docs)} documents given); lower min_chars or pass longer chunks"
        )
    picked = sorted(random.Random(seed).sample(eligible, min(n, len(eligible))))
    ids = [_doc_id(docs[i], id_key, i) for i in picked]

    from tqdm.auto import tqdm

    questions: dict[int, str] = {}
    pending = list(range(len(picked)))
    config: dict[str, Any] = {} if max_concurrency is None else {"max_concurrency": max_concurrency}
    with tqdm(total=len(picked), desc="Writing questions", disable=not show_progress) as bar:
        for _ in range(max_attempts):
            if not pending:
                break
            messages = [
                [SystemMessage(prompt), HumanMessage(docs[picked[j]].page_content.strip())]
                for j in pending
            ]
            replies = llm.batch(messages, config=config or None)  # type: ignore[arg-type]
            retry = []
            for j, reply in zip(pending, replies, strict=True):
                question = parse_question(_message_text(reply), max_chars=max_chars)
                if question is None:
                    retry.append(j)
                else:
                    questions[j] = question
                    bar.update(1)
            pending = retry
    if not questions:
        raise ValueError(
            f"the model gave no usable question for any of the {len(picked)} chunks (tried "
            f"{max_attempts} times each); check the model and the prompt"
        )
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    seen: set[str] = set()
    duplicates = 0
    for j in sorted(questions):
        key = questions[j].lower()
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        qid = f"gen-{len(queries)}"
        queries[qid] = questions[j]
        qrels[qid] = {ids[j]: 1}
    if pending or duplicates:
        warnings.warn(
            f"{len(pending)} of {len(picked)} chunks got no usable question and {duplicates} "
            f"duplicate questions were dropped; {len(queries)} labels remain",
            UserWarning,
            stacklevel=2,
        )
    return queries, qrels


def save_labels(
    path: str | Path,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    split: str = "test",
    documents: Sequence[Document] | None = None,
) -> Path:
    r"""Write labels as a BEIR folder: ``queries.jsonl``, ``qrels/<split>.tsv``, ``corpus.jsonl``.

    Args:
        path: The folder (created if needed; existing files of the same names are replaced).
        queries: ``{query_id: text}``.
        qrels: ``{query_id: {doc_id: relevance}}``.
        split: Name of the qrels file.
        documents: Also write them as ``corpus.jsonl`` (``_id`` = ``Document.id``), making the
            folder a complete BEIR dataset for ``langchain-fusion tune --beir``.

    Returns:
        The folder.

    Raises:
        ValueError: If ``split`` is not a plain name or a qrels query is not in ``queries``.

    Example:
        >>> import tempfile
        >>> folder = save_labels(tempfile.mkdtemp(), {"q1": "What is BM25?"}, {"q1": {"d1": 1}})
        >>> sorted(p.name for p in folder.rglob("*"))
        ['qrels', 'queries.jsonl', 'test.tsv']
        >>> load_labels(folder)
        ({'q1': 'What is BM25?'}, {'q1': {'d1': 1}})

    """
    if not isinstance(split, str) or not re.fullmatch(r"[\w.-]+", split):
        raise ValueError(f"split must be a plain name such as 'test', got {split!r}")
    unknown = [q for q in qrels if q not in queries]
    if unknown:
        raise ValueError(f"qrels has queries that are not in queries: {unknown[:3]}")
    folder = Path(path).expanduser()
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as f:
        for qid, text in queries.items():
            f.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    with (folder / "qrels" / f"{split}.tsv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["query-id", "corpus-id", "score"])
        for qid, judged in qrels.items():
            for doc_id, score in judged.items():
                writer.writerow([qid, doc_id, int(score)])
    if documents is not None:
        with (folder / "corpus.jsonl").open("w", encoding="utf-8") as f:
            for i, doc in enumerate(documents):
                record = {
                    "_id": _doc_id(doc, None, i),
                    "title": str(doc.metadata.get("title", "")),
                    "text": doc.page_content,
                }
                if record["title"] and doc.page_content.startswith(record["title"] + "\n"):
                    record["text"] = doc.page_content[len(record["title"]) + 1 :]
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return folder


def load_labels(
    path: str | Path, split: str = "test"
) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Read labels written by `save_labels` (or any BEIR folder): ``(queries, qrels)``.

    Only the queries judged in ``qrels/<split>.tsv`` are returned.

    Example:
        >>> import tempfile
        >>> folder = save_labels(tempfile.mkdtemp(), {"a": "x y z", "b": "u v w"},
        ...                      {"b": {"d": 1}}, split="dev")
        >>> load_labels(folder, "dev")
        ({'b': 'u v w'}, {'b': {'d': 1}})

    """
    qrels = load_qrels(path, split)
    queries = load_queries(path)
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise ValueError(
            f"qrels/{split}.tsv judges queries missing from queries.jsonl: {missing[:3]}"
        )
    return {q: queries[q] for q in qrels}, qrels
