"""Load retrieval test collections in the BEIR format.

A BEIR collection is a folder with three parts:

```text
<name>/corpus.jsonl        one JSON object per line: {"_id", "title", "text"}
<name>/queries.jsonl       one JSON object per line: {"_id", "text"}
<name>/qrels/<split>.tsv   tab-separated "query-id  corpus-id  score", with a header line
```

Every error names the file and the 1-based line number, so a broken download is quick to find.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from langchain_core.documents import Document

from langchain_fusion.evaluation.checks import examples

__all__ = [
    "BeirDataset",
    "available_splits",
    "load_beir",
    "load_corpus",
    "load_qrels",
    "load_queries",
]

PathLike = Union[str, "os.PathLike[str]"]

_LAYOUT = "corpus.jsonl, queries.jsonl and qrels/<split>.tsv"
_QRELS_COLUMNS = "query-id, corpus-id, score"


@dataclass
class BeirDataset:
    r"""A BEIR test collection: documents, the queries of one split and their relevance judgments.

    Attributes:
        name: The collection name (its folder name), e.g. ``"scifact"``.
        corpus: The documents; ``Document.id`` is the BEIR ``_id``, ``page_content`` is
            ``title + "\n" + text`` (just ``text`` when the title is empty) and ``metadata`` is
            ``{"_id": ..., "title": ...}``.
        queries: ``{query_id: text}`` for the queries judged in this split, in qrels order.
        qrels: ``{query_id: {doc_id: relevance}}`` for this split (relevance > 0 means relevant).
        split: The split the queries and qrels come from, e.g. ``"test"``.

    Example:
        >>> from langchain_core.documents import Document
        >>> ds = BeirDataset(
        ...     name="toy",
        ...     corpus=[Document("a text", id="d1")],
        ...     queries={"q1": "text?"},
        ...     qrels={"q1": {"d1": 1}},
        ... )
        >>> ds
        BeirDataset(name='toy', split='test', corpus=1 documents, queries=1, qrels=1 judgments)

    """

    name: str
    corpus: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    split: str = "test"

    def __repr__(self) -> str:
        n_judgments = sum(len(docs) for docs in self.qrels.values())
        return (
            f"BeirDataset(name={self.name!r}, split={self.split!r}, corpus={len(self.corpus)} "
            f"documents, queries={len(self.queries)}, qrels={n_judgments} judgments)"
        )


# --------------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------------


def _dataset_dir(path: PathLike) -> Path:
    directory = Path(path).expanduser()
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        msg = f"BEIR dataset directory {str(directory)!r} {what}; expected a folder with {_LAYOUT}"
        raise FileNotFoundError(msg)
    return directory


def _member(path: PathLike, filename: str) -> Path:
    """``path`` itself if it is a file, else ``path/filename`` (which must exist)."""
    candidate = Path(path).expanduser()
    if candidate.is_file():
        return candidate
    file = _dataset_dir(candidate) / filename
    if not file.is_file():
        msg = f"{filename} not found in {str(candidate)!r}; a BEIR dataset folder holds {_LAYOUT}"
        raise FileNotFoundError(msg)
    return file


def available_splits(path: PathLike) -> list[str]:
    r"""List the splits of a BEIR dataset folder: the names of its ``qrels/*.tsv`` files, sorted.

    Args:
        path: The dataset folder.

    Returns:
        Split names such as ``["dev", "test", "train"]``.

    Raises:
        FileNotFoundError: If the folder or its ``qrels`` subfolder does not exist.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> (root / "qrels").mkdir()
        >>> _ = (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n")
        >>> available_splits(root)
        ['test']

    """
    qrels_dir = _dataset_dir(path) / "qrels"
    if not qrels_dir.is_dir():
        msg = f"no qrels folder in {str(Path(path))!r}; a BEIR dataset folder holds {_LAYOUT}"
        raise FileNotFoundError(msg)
    return sorted(p.stem for p in qrels_dir.glob("*.tsv") if p.is_file())


def _qrels_file(path: PathLike, split: str) -> Path:
    candidate = Path(path).expanduser()
    if candidate.is_file():
        return candidate
    splits = available_splits(candidate)
    if split not in splits:
        msg = (
            f"split {split!r} not found in {str(candidate / 'qrels')!r}; "
            f"available splits: {', '.join(splits) or '(none)'}"
        )
        raise ValueError(msg)
    return candidate / "qrels" / f"{split}.tsv"


# --------------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------------


def _read_jsonl(file: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line, checking the required fields."""
    with file.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                msg = f"{file}, line {lineno}: invalid JSON ({exc.msg} at column {exc.colno})"
                raise ValueError(msg) from None
            if not isinstance(obj, dict):
                msg = f"{file}, line {lineno}: expected a JSON object, got {type(obj).__name__}"
                raise ValueError(msg)
            for field in required:
                if field not in obj:
                    msg = (
                        f"{file}, line {lineno}: missing field {field!r} "
                        f"(required: {', '.join(required)}; found: {', '.join(obj) or 'none'})"
                    )
                    raise ValueError(msg)
            yield lineno, obj


def _text_field(obj: dict[str, Any], field: str, file: Path, lineno: int) -> str:
    value = obj.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        msg = f"{file}, line {lineno}: field {field!r} must be a string, got {type(value).__name__}"
        raise ValueError(msg)
    return value


def _id_field(obj: dict[str, Any], file: Path, lineno: int, seen: dict[str, int]) -> str:
    raw = obj["_id"]
    if isinstance(raw, bool) or not isinstance(raw, (str, int)) or raw == "":
        msg = f"{file}, line {lineno}: field '_id' must be a non-empty string, got {raw!r}"
        raise ValueError(msg)
    doc_id = str(raw)
    first = seen.setdefault(doc_id, lineno)
    if first != lineno:
        msg = f"{file}, line {lineno}: duplicate _id {doc_id!r} (first seen on line {first})"
        raise ValueError(msg)
    return doc_id


def load_corpus(path: PathLike) -> list[Document]:
    r"""Read a BEIR ``corpus.jsonl`` into LangChain documents.

    Each line needs ``_id`` and ``text``; ``title`` is optional. ``Document.id`` is the ``_id``,
    ``page_content`` is ``title + "\n" + text`` (only ``text`` when the title is empty) and
    ``metadata`` is ``{"_id": ..., "title": ...}``. Other fields are ignored.

    Args:
        path: The dataset folder or the ``corpus.jsonl`` file itself.

    Returns:
        The documents, in file order.

    Raises:
        FileNotFoundError: If the folder or file does not exist.
        ValueError: On a broken line, a missing field or a duplicate ``_id`` (naming file and line).

    Example:
        >>> import tempfile, pathlib
        >>> file = pathlib.Path(tempfile.mkdtemp()) / "corpus.jsonl"
        >>> _ = file.write_text(
        ...     '{"_id": "d1", "title": "Cats", "text": "Cats purr."}\n'
        ...     '{"_id": "d2", "title": "", "text": "Dogs bark."}\n'
        ... )
        >>> docs = load_corpus(file)
        >>> docs[0].id, docs[0].page_content, docs[0].metadata
        ('d1', 'Cats\nCats purr.', {'_id': 'd1', 'title': 'Cats'})
        >>> docs[1].page_content
        'Dogs bark.'

    """
    file = _member(path, "corpus.jsonl")
    seen: dict[str, int] = {}
    documents: list[Document] = []
    for lineno, obj in _read_jsonl(file, ("_id", "text")):
        doc_id = _id_field(obj, file, lineno, seen)
        title = _text_field(obj, "title", file, lineno)
        text = _text_field(obj, "text", file, lineno)
        content = f"{title}\n{text}" if title.strip() else text
        documents.append(
            Document(page_content=content, metadata={"_id": doc_id, "title": title}, id=doc_id)
        )
    return documents


def load_queries(path: PathLike) -> dict[str, str]:
    r"""Read a BEIR ``queries.jsonl`` (``_id`` and ``text`` per line) into ``{query_id: text}``.

    Args:
        path: The dataset folder or the ``queries.jsonl`` file itself.

    Returns:
        All queries of the file, in file order (not restricted to a split; see `load_beir`).

    Raises:
        FileNotFoundError: If the folder or file does not exist.
        ValueError: On a broken line, a missing field or a duplicate ``_id`` (naming file and line).

    Example:
        >>> import tempfile, pathlib
        >>> file = pathlib.Path(tempfile.mkdtemp()) / "queries.jsonl"
        >>> _ = file.write_text('{"_id": "q1", "text": "Do cats purr?", "metadata": {}}\n')
        >>> load_queries(file)
        {'q1': 'Do cats purr?'}

    """
    file = _member(path, "queries.jsonl")
    seen: dict[str, int] = {}
    queries: dict[str, str] = {}
    for lineno, obj in _read_jsonl(file, ("_id", "text")):
        query_id = _id_field(obj, file, lineno, seen)
        queries[query_id] = _text_field(obj, "text", file, lineno)
    return queries


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_qrels(path: PathLike, split: str = "test") -> dict[str, dict[str, int]]:
    r"""Read BEIR relevance judgments ``qrels/<split>.tsv`` into ``{query_id: {doc_id: score}}``.

    The file has three tab-separated columns ``query-id corpus-id score`` and a header line (a
    first line whose score is not a number is taken as the header). A pair judged twice with the
    same score is kept once; with different scores it is an error.

    Args:
        path: The dataset folder, or a qrels ``.tsv`` file (then ``split`` is not used).
        split: The split to read, e.g. ``"test"``, ``"dev"`` or ``"train"``.

    Returns:
        The judgments, queries in file order.

    Raises:
        FileNotFoundError: If the folder or file does not exist.
        ValueError: If the split does not exist (listing the available ones), or a row has the wrong
            number of columns, an empty id or a non-integer score (naming file and line).

    Example:
        >>> import tempfile, pathlib
        >>> file = pathlib.Path(tempfile.mkdtemp()) / "test.tsv"
        >>> rows = ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q1\td2\t0", "q2\td1\t2"]
        >>> _ = file.write_text("\n".join(rows) + "\n")
        >>> load_qrels(file)
        {'q1': {'d1': 1, 'd2': 0}, 'q2': {'d1': 2}}

    """
    file = _qrels_file(path, split)
    qrels: dict[str, dict[str, int]] = {}
    first_line = True
    with file.open(encoding="utf-8") as handle:
        for lineno, raw in enumerate(handle, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            fields = [f.strip() for f in (line.split("\t") if "\t" in line else line.split())]
            is_first, first_line = first_line, False
            if len(fields) != 3:
                msg = (
                    f"{file}, line {lineno}: expected 3 columns ({_QRELS_COLUMNS}), "
                    f"got {len(fields)}: {line!r}"
                )
                raise ValueError(msg)
            query_id, doc_id, score_text = fields
            try:
                score = int(score_text)
            except ValueError:
                if is_first and not _is_number(score_text):
                    continue  # header line
                msg = f"{file}, line {lineno}: score must be an integer, got {score_text!r}"
                raise ValueError(msg) from None
            if not query_id or not doc_id:
                msg = f"{file}, line {lineno}: empty query-id or corpus-id in {line!r}"
                raise ValueError(msg)
            judged = qrels.setdefault(query_id, {})
            previous = judged.setdefault(doc_id, score)
            if previous != score:
                msg = (
                    f"{file}, line {lineno}: ({query_id!r}, {doc_id!r}) judged again with score "
                    f"{score}, earlier with {previous}"
                )
                raise ValueError(msg)
    return qrels


# --------------------------------------------------------------------------------------------------
# Whole dataset
# --------------------------------------------------------------------------------------------------


def _check_references(
    qrels: dict[str, dict[str, int]],
    doc_ids: Collection[str],
    query_ids: Collection[str],
    file: Path,
    *,
    strict: bool,
) -> dict[str, dict[str, int]]:
    unknown_queries = [q for q in qrels if q not in query_ids]
    unknown_docs = list(
        dict.fromkeys(d for docs in qrels.values() for d in docs if d not in doc_ids)
    )
    if not unknown_queries and not unknown_docs:
        return qrels
    problems = []
    if unknown_docs:
        problems.append(
            f"{len(unknown_docs)} document id(s) not in corpus.jsonl ({examples(unknown_docs, 5)})"
        )
    if unknown_queries:
        problems.append(
            f"{len(unknown_queries)} query id(s) not in queries.jsonl "
            f"({examples(unknown_queries, 5)})"
        )
    problem = f"{file} names " + " and ".join(problems)
    if strict:
        msg = f"{problem}; fix the files or pass strict=False to drop those judgments"
        raise ValueError(msg)
    bad_queries = set(unknown_queries)
    bad_docs = set(unknown_docs)
    kept: dict[str, dict[str, int]] = {}
    for query_id, docs in qrels.items():
        if query_id in bad_queries:
            continue
        judged = {d: s for d, s in docs.items() if d not in bad_docs}
        if judged:
            kept[query_id] = judged
    warnings.warn(
        f"{problem}; dropped their judgments ({len(qrels) - len(kept)} query(s) left without any)",
        UserWarning,
        stacklevel=3,
    )
    return kept


def load_beir(path: PathLike, split: str = "test", *, strict: bool = True) -> BeirDataset:
    r"""Load a BEIR collection: corpus, the judged queries of ``split`` and their qrels.

    Args:
        path: The dataset folder, holding ``corpus.jsonl``, ``queries.jsonl`` and
            ``qrels/<split>.tsv``.
        split: Which qrels file to use, e.g. ``"test"``, ``"dev"`` or ``"train"``.
        strict: If True (default), qrels naming a document or query that does not exist raise a
            ``ValueError``; if False, those judgments are dropped with a warning.

    Returns:
        A `BeirDataset` whose ``queries`` are restricted to the queries judged in ``split``.

    Raises:
        FileNotFoundError: If the folder or one of its files does not exist.
        ValueError: On an unknown split (listing the available ones), a malformed line (naming file
            and line), or, with ``strict=True``, qrels that reference unknown ids.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp()) / "toy"
        >>> (root / "qrels").mkdir(parents=True)
        >>> _ = (root / "corpus.jsonl").write_text(
        ...     '{"_id": "d1", "title": "Cats", "text": "Cats purr."}\n'
        ...     '{"_id": "d2", "title": "Dogs", "text": "Dogs bark."}\n'
        ... )
        >>> _ = (root / "queries.jsonl").write_text(
        ...     '{"_id": "q1", "text": "purring"}\n{"_id": "q2", "text": "unjudged"}\n'
        ... )
        >>> _ = (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1")
        >>> ds = load_beir(root)
        >>> ds.name, ds.queries, ds.qrels, [d.id for d in ds.corpus]
        ('toy', {'q1': 'purring'}, {'q1': {'d1': 1}}, ['d1', 'd2'])

    """
    directory = _dataset_dir(path)
    qrels_file = _qrels_file(directory, split)  # checks the split before the expensive reads
    corpus_file = _member(directory, "corpus.jsonl")
    queries_file = _member(directory, "queries.jsonl")
    qrels = load_qrels(qrels_file)
    all_queries = load_queries(queries_file)
    corpus = load_corpus(corpus_file)
    doc_ids = {doc.metadata["_id"] for doc in corpus}
    qrels = _check_references(qrels, doc_ids, all_queries, qrels_file, strict=strict)
    queries = {query_id: all_queries[query_id] for query_id in qrels}
    name = directory.resolve().name
    return BeirDataset(name=name, corpus=corpus, queries=queries, qrels=qrels, split=split)
