"""The ``langchain-fusion`` CLI.

User mistakes give one-line errors; the main flows work end to end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfWriter

from langchain_fusion.cli import build_parser, main

CLI = [sys.executable, "-m", "langchain_fusion.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
ENV.pop("OPENAI_API_KEY", None)


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=ENV, input=stdin, timeout=600
    )


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: ")
    return lines[-1]


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("index", "search", "ask", "chat"):
        assert command in out
    assert build_parser().prog == "langchain-fusion"


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage:" in capsys.readouterr().out


def test_missing_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    msg = one_line_error(
        capsys, ["index", str(tmp_path / "nope.pdf"), "--out", str(tmp_path / "i")]
    )
    assert "nope.pdf" in msg


def test_empty_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    msg = one_line_error(
        capsys, ["index", str(tmp_path / "empty"), "--out", str(tmp_path / "i"), "--quiet"]
    )
    assert "empty" in msg or "no" in msg.lower()
    assert not (tmp_path / "i").exists()


def test_only_unreadable_pdfs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blank = PdfWriter()
    blank.add_blank_page(width=200, height=200)
    blank.write(tmp_path / "scan.pdf")
    locked = PdfWriter()
    locked.add_blank_page(width=200, height=200)
    locked.encrypt("secret")
    locked.write(tmp_path / "locked.pdf")
    msg = one_line_error(capsys, ["index", str(tmp_path), "--out", str(tmp_path / "i"), "--quiet"])
    assert "scan.pdf" in msg and "locked.pdf" in msg
    assert not (tmp_path / "i").exists()


def test_index_not_found(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    msg = one_line_error(capsys, ["search", str(tmp_path / "missing"), "query"])
    assert "index not found" in msg and "langchain-fusion index" in msg


def test_not_an_index(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("hello")
    msg = one_line_error(capsys, ["search", str(tmp_path / "junk"), "query"])
    assert "langchain-fusion index" in msg


def test_bad_option_value_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["search", "--sample", "q", "--method", "magic"])
    assert exc.value.code == 2


@pytest.mark.slow
def test_index_search_ask_chat_end_to_end(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(
        "# Pumps\n\nError P-404 means the pump lost prime. Refill the priming chamber.\n\n"
        "# Filters\n\nReplace the carbon filter every three months to keep water clean.\n"
    )
    (docs / "b.txt").write_text("The warranty lasts five years from the date of purchase.\n")
    (docs / "blob.bin").write_bytes(bytes(range(256)) * 4)
    out = tmp_path / "index"

    r = run("index", str(docs), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "blob.bin" in r.stderr  # skipped file reported, not silently dropped
    assert out.is_dir()

    r = run("search", str(out), "P-404", "--k", "2", "--explain")
    assert r.returncode == 0, r.stderr
    assert "P-404" in r.stdout.splitlines()[1] and "dense (raw/norm/rank)" in r.stdout

    r = run("ask", str(out), "What does error P-404 mean?", "--no-stream")
    assert r.returncode == 0, r.stderr
    assert "No LLM configured" in r.stdout
    assert "lost prime" in r.stdout and "[1]" in r.stdout and "Sources:" in r.stdout

    # Re-indexing after an edit updates in place: no duplicates, stale chunks removed.
    (docs / "b.txt").write_text("The warranty lasts ten years.\n")
    r = run("index", str(docs), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    r = run("search", str(out), "warranty years", "--k", "10", "--json")
    texts = [line for line in r.stdout.splitlines() if '"text"' in line]
    assert sum("warranty" in t for t in texts) == 1 and "ten years" in r.stdout

    r = run("chat", str(out), "--no-stream", stdin="How often do I replace the filter?\n\n")
    assert r.returncode == 0, r.stderr
    assert "three months" in r.stdout


@pytest.mark.slow
def test_readme_main_job_command() -> None:
    r = run("ask", "--sample", "What does error E-217 mean?")
    assert r.returncode == 0, r.stderr
    assert "E-217" in r.stdout and "lumenctl --reset-bms" in r.stdout
    assert "Sources:" in r.stdout and "[1]" in r.stdout
