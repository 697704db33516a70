"""How retrieved documents are shown: source labels, numbered sources, score breakdowns.

Plain functions of ``Document`` metadata, shared by the retriever (``explain``), the agent tool,
the QA chain and the CLI. They sit below all of them, so none has to import another to print.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.documents import Document

__all__ = ["format_breakdown", "format_sources", "source_label", "source_parts"]


def source_label(doc: Document) -> str:
    """Return a short label for a source: file name, page and section, when the metadata has them.

    Uses ``metadata["file_name"]`` (else the base name of ``metadata["source"]``, else
    ``metadata["title"]``), ``metadata["page"]`` (shown as is: ingestion stores 1-based pages) and
    ``metadata["section"]``. Returns ``""`` when none is present.

    Args:
        doc: The document.

    Returns:
        E.g. ``"report.pdf, p. 3, Results"``.

    Example:
        >>> source_label(Document("x", metadata={"source": "/data/report.pdf", "page": 3}))
        'report.pdf, p. 3'
        >>> source_label(Document("x"))
        ''

    """
    meta: dict[str, Any] = doc.metadata or {}
    parts = source_parts(meta, title=True)
    section = meta.get("section")
    if section:
        parts.append(" ".join(str(section).split()))
    return ", ".join(parts)


def source_parts(meta: Mapping[str, Any], *, title: bool = False) -> list[str]:
    """Return ``[file name, "p. N"]`` from document metadata, leaving out what is missing.

    The file name is ``metadata["file_name"]``, else the base name of ``metadata["source"]``
    (else ``metadata["title"]`` when ``title``); the page is ``metadata["page"]`` as stored.

    Example:
        >>> source_parts({"source": "/data/report.pdf", "page": 3})
        ['report.pdf', 'p. 3']
        >>> source_parts({"title": "Cats"}), source_parts({"title": "Cats"}, title=True)
        ([], ['Cats'])

    """
    parts: list[str] = []
    name = meta.get("file_name")
    if not name and isinstance(meta.get("source"), str):
        name = os.path.basename(str(meta["source"]).rstrip("/\\")) or meta["source"]
    if not name and title:
        name = meta.get("title")
    if name:
        parts.append(str(name))
    page = meta.get("page")
    if page is not None and page != "":
        parts.append(f"p. {page}")
    return parts


def format_sources(
    docs: Sequence[Document], *, with_scores: bool = False, max_chars: int | None = None
) -> str:
    r"""Format documents as numbered sources: ``[1] (report.pdf, p. 3) text``, one block each.

    The label comes from the metadata (see
    [`source_label`][langchain_fusion.formatting.source_label]); whitespace in the text is
    collapsed so that PDF line breaks do not waste tokens. Blocks are separated by a blank line.

    Args:
        docs: The documents, best first; the first is ``[1]``.
        with_scores: Add the fused score (``metadata["fusion"]["score"]``, else a numeric
            ``metadata["score"]`` or ``metadata["relevance_score"]``) to each label.
        max_chars: Cut each text to about this many characters (``None``: no limit).

    Returns:
        The formatted sources, or ``""`` for no documents.

    Raises:
        TypeError: If an item is not a Document.
        ValueError: If ``max_chars`` < 1.

    Example:
        >>> docs = [
        ...     Document("Paris is the\ncapital of France.",
        ...              metadata={"file_name": "geo.pdf", "page": 3, "fusion": {"score": 0.83}}),
        ...     Document("Berlin is the capital of Germany."),
        ... ]
        >>> print(format_sources(docs, with_scores=True))
        [1] (geo.pdf, p. 3, score 0.830) Paris is the capital of France.
        <BLANKLINE>
        [2] Berlin is the capital of Germany.

    """
    if max_chars is not None and (isinstance(max_chars, bool) or max_chars < 1):
        raise ValueError(f"max_chars must be None or an int >= 1, got {max_chars!r}")
    blocks = []
    for i, doc in enumerate(docs, 1):
        if not isinstance(doc, Document):
            raise TypeError(f"docs[{i - 1}] must be a Document, got {type(doc).__name__}")
        label = source_label(doc)
        score = _score(doc) if with_scores else None
        if score is not None:
            label = f"{label}, score {score:.3f}" if label else f"score {score:.3f}"
        text = " ".join(doc.page_content.split())
        if max_chars is not None and len(text) > max_chars:
            cut = text.rfind(" ", 0, max_chars)
            text = text[: cut if cut > max_chars // 2 else max_chars] + " …"
        blocks.append(f"[{i}] ({label}) {text}" if label else f"[{i}] {text}")
    return "\n\n".join(blocks)


def _score(doc: Document) -> float | None:
    fusion = doc.metadata.get("fusion")
    candidates = [fusion.get("score") if isinstance(fusion, Mapping) else None]
    candidates += [doc.metadata.get("score"), doc.metadata.get("relevance_score")]
    for value in candidates:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def format_breakdown(docs: Sequence[Document], names: Sequence[str], width: int = 60) -> str:
    """Format fused documents as a score-breakdown table (plain text).

    Example:
        >>> d = Document("hello", metadata={"fusion": {"score": 0.9, "retrievers": {
        ...     "dense": {"raw": 0.5, "normalized": 1.0, "rank": 1}, "bm25": None}}})
        >>> print(format_breakdown([d], ["dense", "bm25"]))  # doctest: +NORMALIZE_WHITESPACE
        #  fused  dense (raw/norm/rank)  bm25 (raw/norm/rank)  text
        1  0.900  0.500/1.000/1          -                     hello

    A retriever that did not return the document and scores it exactly 0 (BM25: no query term
    in it) shows ``no keyword match`` rather than a normalized score that would suggest one.
    When the documents carry a ``source`` (or ``file_name``) in their metadata, a ``source``
    column gives its file name and ``page``. With ``feedback_docs``, a last line names the
    documents the query was expanded with.

    """
    sources = [", ".join(source_parts(doc.metadata)) for doc in docs]
    with_source = any(sources)
    header = ["#", "fused"] + [f"{n} (raw/norm/rank)" for n in names]
    header += ["source", "text"] if with_source else ["text"]
    rows = [header]
    for i, doc in enumerate(docs, 1):
        info = doc.metadata.get("fusion", {})
        row = [str(i), f"{info.get('score', float('nan')):.3f}"]
        for n in names:
            b = info.get("retrievers", {}).get(n)
            if b is None:
                row.append("-")
                continue
            if b["raw"] == 0 and b["rank"] is None:  # BM25 0: no query term, whatever the norm
                row.append("no keyword match")
                continue
            raw = "-" if b["raw"] is None else f"{b['raw']:.3f}"
            norm = "-" if b["normalized"] is None else f"{b['normalized']:.3f}"
            rank = "-" if b["rank"] is None else str(b["rank"])
            row.append(f"{raw}/{norm}/{rank}")
        if with_source:
            row.append(sources[i - 1] or "-")
        text = " ".join(doc.page_content.split())
        row.append(text if len(text) <= width else text[: width - 1] + "…")
        rows.append(row)
    widths = [max(len(r[c]) for r in rows) for c in range(len(header) - 1)]
    lines = []
    for r in rows:
        cells = [r[c].ljust(widths[c]) for c in range(len(widths))] + [r[-1]]
        lines.append("  ".join(cells).rstrip())
    feedback = docs[0].metadata.get("fusion", {}).get("feedback") if docs else None
    if feedback:
        lines.append(
            f"(query expanded with {len(feedback['documents'])} feedback document(s) "
            f"{', '.join(feedback['documents'])} at weight {feedback['weight']:g})"
        )
    return "\n".join(lines)
