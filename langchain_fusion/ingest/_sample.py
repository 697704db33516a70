"""The bundled sample document and its question set."""

from __future__ import annotations

import json
import os
import re
import tempfile
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "SAMPLE_FILE_NAME",
    "SAMPLE_PDF_NAME",
    "sample_path",
    "sample_pdf_path",
    "sample_questions",
    "write_sample_pdf",
]

#: File name of the bundled sample document (inside ``langchain_fusion/data/sample/``).
SAMPLE_FILE_NAME = "lumen7_manual.md"
#: File name of the same manual as a PDF (built from the Markdown by ``_build_sample_pdf``).
SAMPLE_PDF_NAME = "lumen7_manual.pdf"
_QUESTIONS_FILE_NAME = "questions.json"


def _resource(name: str) -> Path:
    resource = resources.files("langchain_fusion") / "data" / "sample" / name
    if isinstance(resource, Path):
        return resource
    # Installed as a zip: copy the file to a fixed place so ids built from its path stay stable.
    target = Path(tempfile.gettempdir()) / "langchain_fusion_sample" / name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(resource.read_bytes())
    return target


def sample_path() -> Path:
    """Path of the bundled sample document: the Lumen-7 home battery owner's manual (Markdown).

    An original, fictional technical manual of about 3,500 words, written to show what hybrid
    search is for: exact identifiers (error codes such as ``E-217``, firmware ``4.2.1``, the
    ``lumenctl`` command line, part numbers, config keys such as ``grid.export_limit_w``) that
    keyword search finds and embeddings blur, next to plain-prose sections (safety, winter
    operation, warranty, maintenance) that paraphrased questions hit without sharing its words.
    :func:`sample_questions` holds questions about it with the expected answers.

    Returns:
        The absolute path of the Markdown file.

    Example:
        >>> path = sample_path()
        >>> path.name, path.is_file()
        ('lumen7_manual.md', True)
        >>> path.read_text(encoding="utf-8").splitlines()[0]
        "# Lumen-7 Home Battery: Owner's Manual"

    """
    return _resource(SAMPLE_FILE_NAME)


def sample_questions() -> list[dict[str, Any]]:
    """Questions about the sample document, with expected answers and where they are answered.

    Each question is a dict with:

    - ``id``: a short stable id such as ``"q01"``;
    - ``question``: the question as a user would type it;
    - ``answer``: the expected answer (for unanswerable questions: what a grounded answer says);
    - ``has_answer``: whether the document answers it;
    - ``section``: the heading path of the section that answers it (the chunks' ``section``
      metadata), ``None`` when unanswerable;
    - ``evidence``: a short verbatim phrase from the answering passage (``None`` when
      unanswerable), handy to find the relevant chunk in tests;
    - ``kind``: ``"keyword"`` (exact identifiers: keyword search shines), ``"paraphrase"`` (no
      shared vocabulary: dense search shines), ``"mixed"`` or ``"unanswerable"``.

    Returns:
        The questions, in a fixed order (a fresh list on every call).

    Example:
        >>> questions = sample_questions()
        >>> sorted({q["kind"] for q in questions})
        ['keyword', 'mixed', 'paraphrase', 'unanswerable']
        >>> q = next(q for q in questions if "E-217" in q["question"])
        >>> q["evidence"] in sample_path().read_text(encoding="utf-8")
        True

    """
    data = json.loads(_resource(_QUESTIONS_FILE_NAME).read_text(encoding="utf-8"))
    questions: list[dict[str, Any]] = data["questions"]
    return questions


def sample_pdf_path() -> Path:
    """Path of the bundled sample manual as a PDF (the same text as :func:`sample_path`).

    The examples in the README and the docs index ``manual.pdf``: :func:`write_sample_pdf`
    copies this file there, so that they run as written before you try your own files.

    Returns:
        The absolute path of the PDF (7 pages with a text layer).

    Example:
        >>> from langchain_fusion.ingest import load_documents
        >>> pages = load_documents(sample_pdf_path(), show_progress=False).documents
        >>> len(pages), pages[0].metadata["file_type"]
        (7, 'pdf')
        >>> "E-217" in " ".join(page.page_content for page in pages)
        True

    """
    return _resource(SAMPLE_PDF_NAME)


def write_sample_pdf(path: str | os.PathLike[str] = "manual.pdf") -> Path:
    """Copy the sample manual PDF to ``path`` (default ``manual.pdf`` in the current folder).

    It never replaces another file: when ``path`` exists it must already hold the sample PDF.

    Args:
        path: Where to write it.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        FileExistsError: ``path`` exists and is not the sample PDF (give another path).

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "manual.pdf"
        >>> write_sample_pdf(target).read_bytes() == sample_pdf_path().read_bytes()
        True
        >>> write_sample_pdf(target) == target  # already there: nothing to do
        True

    """
    target = Path(path)
    data = sample_pdf_path().read_bytes()
    if target.exists():
        if target.is_file() and target.read_bytes() == data:
            return target
        raise FileExistsError(
            f"{target} exists and is not the sample manual PDF; it is left as it is: write the "
            "sample to another path, e.g. write_sample_pdf('lumen7_manual.pdf')"
        )
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, target)
    return target


# ---------------------------------------------------------------------------- building the PDF

_PAGE_WIDTH, _PAGE_HEIGHT, _MARGIN = 612, 792, 72
_FONT_SIZE, _LEADING, _WRAP = 10, 13, 92  # characters per line: Helvetica 10 pt in 468 pt
_LINES_PER_PAGE = (_PAGE_HEIGHT - 2 * _MARGIN) // _LEADING


def _markdown_lines(markdown: str) -> list[tuple[bool, str]]:
    """``(is_heading, line)`` to print: paragraphs reflowed, Markdown marks removed."""
    out: list[tuple[bool, str]] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            text = " ".join(paragraph)
            out.extend((False, line) for line in textwrap.wrap(text, _WRAP))
            paragraph.clear()

    for raw in markdown.splitlines():
        line = raw.rstrip().replace("`", "").replace("**", "")
        if line.startswith("```"):
            flush()
            continue
        if not line.strip():
            flush()
            if out and out[-1] != (False, ""):
                out.append((False, ""))
            continue
        if line.startswith("#"):
            flush()
            out.append((True, line.lstrip("#").strip()))
            continue
        if line.startswith("|"):
            flush()
            if re.fullmatch(r"[|\-: ]+", line):  # the header separator row
                continue
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            wrapped = textwrap.wrap("  |  ".join(cells), _WRAP, subsequent_indent="    ")
            out.extend((False, part) for part in wrapped)
            continue
        if re.match(r"^\s*([-*]|\d+\.) ", line):  # a list item starts its own line
            flush()
        paragraph.append(line.strip())
    flush()
    return out


def _pdf_string(text: str) -> bytes:
    data = text.encode("cp1252", errors="replace")
    return b"(" + data.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _build_sample_pdf(markdown: str) -> bytes:
    """Typeset the sample Markdown as a plain, deterministic PDF (Helvetica, WinAnsi text).

    No compression, dates or random ids: the same Markdown always gives the same bytes, which
    ``tests/unit_tests/test_hardening_docs.py`` checks against the shipped file.
    """
    lines = _markdown_lines(markdown)
    pages: list[list[tuple[bool, str]]] = []
    for is_heading, line in lines:
        if not pages or len(pages[-1]) >= _LINES_PER_PAGE:
            if not line and not is_heading:
                continue  # no blank line at the top of a page
            pages.append([])
        pages[-1].append((is_heading, line))
    fonts = (
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    )
    objects: list[bytes] = [b"", b"", *fonts]  # 1: catalog, 2: page tree, 3-4: fonts
    kids: list[int] = []
    for page in pages:
        ops = [
            b"BT /F1 %d Tf %d TL %d %d Td" % (_FONT_SIZE, _LEADING, _MARGIN, _PAGE_HEIGHT - _MARGIN)
        ]
        bold = False
        for is_heading, line in page:
            if is_heading != bold:
                ops.append(
                    b"/F2 %d Tf" % (_FONT_SIZE + 1) if is_heading else b"/F1 %d Tf" % _FONT_SIZE
                )
                bold = is_heading
            ops.append(b"T*" if not line else _pdf_string(line) + b" '")
        ops.append(b"ET")
        stream = b"\n".join(ops)
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] "
            b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents %d 0 R >>"
            % (_PAGE_WIDTH, _PAGE_HEIGHT, len(objects))
        )
        kids.append(len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % kid for kid in kids),
        len(kids),
    )
    objects.append(
        b"<< /Title (Lumen-7 Home Battery: Owner's Manual) /Producer (langchain-fusion) >>"
    )
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        len(objects),
        xref,
    )
    return bytes(out)
