"""The bundled sample document and its question set."""

from __future__ import annotations

import json
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["SAMPLE_FILE_NAME", "sample_path", "sample_questions"]

#: File name of the bundled sample document (inside ``langchain_fusion/data/sample/``).
SAMPLE_FILE_NAME = "lumen7_manual.md"
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
