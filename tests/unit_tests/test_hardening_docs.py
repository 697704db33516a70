"""Hardening (issue 15), item 17: every documented example runs as written for a newcomer.

The docs index ``manual.pdf``; the package ships it (the sample manual as a PDF, built from the
Markdown) and the examples write it first, so they run in an empty folder. Notebook 01 runs on
it too, and the notebooks' README command skips notebook 02 without BEIR data, as CI does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from langchain_fusion.cli import main
from langchain_fusion.dense.embeddings import LocalEmbeddings
from langchain_fusion.ingest import (
    load_documents,
    sample_path,
    sample_pdf_path,
    sample_questions,
    write_sample_pdf,
)
from langchain_fusion.ingest._sample import _build_sample_pdf
from tests.unit_tests.test_docs import ROOT, RUNNABLE_PAGES, _hash_encode, _tested_blocks


def test_shipped_pdf_is_built_from_the_sample_markdown() -> None:
    built = _build_sample_pdf(sample_path().read_text(encoding="utf-8"))
    assert sample_pdf_path().read_bytes() == built, (
        "langchain_fusion/data/sample/lumen7_manual.pdf is out of date: rebuild it with "
        'python -c "from langchain_fusion.ingest._sample import *; from pathlib import Path; '
        "Path('langchain_fusion/data/sample/lumen7_manual.pdf').write_bytes("
        "_build_sample_pdf(sample_path().read_text(encoding='utf-8')))\""
    )


def test_sample_pdf_holds_the_answers() -> None:
    pages = load_documents(sample_pdf_path(), show_progress=False).documents
    text = " ".join(" ".join(page.page_content.split()) for page in pages)
    for question in sample_questions():
        if question["evidence"]:
            evidence = " ".join(question["evidence"].replace("`", "").split()).strip("| ")
            assert evidence in text, question["id"]


def test_write_sample_pdf_never_replaces_another_file(tmp_path: Path) -> None:
    target = tmp_path / "manual.pdf"
    assert write_sample_pdf(target) == target
    assert write_sample_pdf(target) == target  # the same bytes: nothing to do
    mine = tmp_path / "mine.pdf"
    mine.write_bytes(b"%PDF-1.4 my own file")
    with pytest.raises(FileExistsError, match="is not the sample manual PDF; it is left as it is"):
        write_sample_pdf(mine)
    assert mine.read_bytes() == b"%PDF-1.4 my own file"
    assert not list(tmp_path.glob(".*partial"))


def test_cli_sample_pdf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["sample-pdf"]) == 0
    assert (tmp_path / "manual.pdf").read_bytes() == sample_pdf_path().read_bytes()
    assert "langchain-fusion index manual.pdf --out my-index" in capsys.readouterr().out
    (tmp_path / "other.pdf").write_text("not the sample")
    assert main(["sample-pdf", "other.pdf"]) == 1
    assert capsys.readouterr().err.startswith("error: other.pdf exists and is not the sample")


def _mentions_manual(page: Path) -> bool:
    """Whether an example of ``page`` reads the file ``manual.pdf``."""
    return any('ingest(["manual.pdf"]' in block for block in _tested_blocks(page))


@pytest.mark.parametrize(
    "page",
    [p for p in RUNNABLE_PAGES if _mentions_manual(p)],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_examples_run_in_an_empty_folder(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newcomer's folder holds no manual.pdf: the examples' own first lines write it."""
    monkeypatch.setattr(LocalEmbeddings, "_encode", _hash_encode)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "newcomer"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for number, code in enumerate(_tested_blocks(page), 1):
            exec(compile(code, f"{page.name}[block {number}]", "exec"), namespace)
    assert (tmp_path / "manual.pdf").read_bytes() == sample_pdf_path().read_bytes()


def test_notebook_01_uses_only_what_the_repository_ships() -> None:
    notebook = json.loads((ROOT / "notebooks" / "01_quickstart.ipynb").read_text("utf-8"))
    code = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    assert "sample_pdf_path()" in code
    assert "shared/data" not in code and "AI_Information" not in code
    outputs = json.dumps([c.get("outputs", []) for c in notebook["cells"]])
    assert "lumen7_manual.pdf" in outputs and "AI_Information" not in outputs


def test_notebooks_readme_command_skips_notebook_02_without_data(tmp_path: Path) -> None:
    pytest.importorskip("nbmake")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbmake",
            "notebooks/02_choosing_alpha.ipynb",
            "-q",
            "-p",
            "no:doctest",
            "-o",
            "addopts=",
            "-rs",
            "-p",
            "no:randomly",
        ],
        cwd=ROOT,
        env={**os.environ, "LANGCHAIN_FUSION_DATA": str(tmp_path / "no-data")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout and "BEIR SciFact not found" in done.stdout
