"""Hardening (issue 15), what a new user tripped on in the CLI.

* item 14: indexing the same file from a second path warns, and says how to drop the copy;
* item 18: ``chat`` edits lines and keeps a history (``readline``), and the question length
  limit has a flag, ``--max-question-chars``.

The embedding model is replaced by a hashing stand-in of the same class and size (as in
``test_docs.py``), so the CLI runs end to end in a second.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from langchain_fusion.cli import main
from langchain_fusion.dense.embeddings import LocalEmbeddings
from langchain_fusion.ingest import find_copies, ingest, sample_path


def _hash_encode(self: LocalEmbeddings, texts: Sequence[str], *, progress: bool) -> Any:
    out = np.zeros((len(texts), 384), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            out[row, h % 384] += 1.0 if (h >> 32) & 1 else -1.0
        if not out[row].any():
            out[row, 0] = 1.0
        out[row] /= np.linalg.norm(out[row])
    return out


@pytest.fixture
def fast_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LocalEmbeddings, "_encode", _hash_encode)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


# ------------------------------------------------------------------------------------ item 14


def test_find_copies(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    shutil.copy(sample_path(), a / "manual.md")
    shutil.copy(sample_path(), b / "manual.md")
    first = ingest(a, show_progress=False).chunks
    second = ingest(b, show_progress=False).chunks
    assert {c.id for c in first}.isdisjoint(c.id for c in second)  # ids depend on the path
    assert find_copies(second, first) == [(str(b / "manual.md"), str(a / "manual.md"))]
    assert find_copies(first, first) == []  # the same path is an update, not a copy
    both = ingest([a, b], show_progress=False).chunks
    assert find_copies(both) == [(str(b / "manual.md"), str(a / "manual.md"))]


def test_index_warns_about_a_second_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fast_model: None
) -> None:
    out = tmp_path / "idx"
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    shutil.copy(sample_path(), first / "manual.md")
    shutil.copy(sample_path(), second / "manual.md")
    assert main(["index", str(first), "--out", str(out), "--quiet"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["index", str(first), "--out", str(out), "--quiet"]) == 0  # the same path again
    assert "warning" not in capsys.readouterr().err

    assert main(["index", str(second), "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    warning = next(line for line in err.splitlines() if line.startswith("warning: "))
    assert f"{second / 'manual.md'} has the same content as {first / 'manual.md'}" in warning
    assert "search will show both copies" in warning
    assert f".delete(filter={{'source': '{first / 'manual.md'}'}})" in warning
    assert main(["search", str(out), "error E-217", "--k", "2"]) == 0
    shown = capsys.readouterr().out
    # both copies match: plain search tells them apart by their paths, not one file name twice
    assert str(first / "manual.md") in shown and str(second / "manual.md") in shown

    (first / "manual.md").unlink()  # moved: --prune is the way
    third = tmp_path / "third"
    third.mkdir()
    shutil.copy(sample_path(), third / "manual.md")
    assert main(["index", str(third), "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"it moved: run 'langchain-fusion index --prune --out {out}'" in err


# ------------------------------------------------------------------------------------ item 18


def _chat(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], lines: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_max_question_chars_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fast_model: None
) -> None:
    long_question = "What does error E-217 mean? " + "x" * 4_000
    code, _, err = _chat(monkeypatch, capsys, ["chat", "--sample"], long_question + "\n\n")
    assert code == 0
    assert "error: question is 4028 characters long; the limit is 4000" in err
    assert "--max-question-chars N" in err
    code, out, err = _chat(
        monkeypatch,
        capsys,
        ["chat", "--sample", "--max-question-chars", "5000"],
        long_question + "\n\n",
    )
    assert code == 0 and "error:" not in err and "Sources:" in out
    assert main(["ask", "--sample", "--max-question-chars", "10", "What is E-217?"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("error: question is 14 characters long")
    with pytest.raises(SystemExit):
        main(["ask", "--sample", "--max-question-chars", "0", "q"])


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_chat_input_has_line_editing_and_history() -> None:
    pytest.importorskip("readline")
    import pty

    script = (
        "from langchain_fusion.cli.search import _line_editing\n"
        "assert _line_editing()\n"
        "print('got', repr(input('? ')), flush=True)\n"
        "print('got', repr(input('? ')), flush=True)\n"
    )
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal on its stdin, as a user's chat session has
        os.execve(sys.executable, [sys.executable, "-c", script], {**os.environ, "TERM": "xterm"})
    try:
        # "abc", Left twice, "X", Enter; then Up (the previous line), Enter
        output = _talk(fd, [b"abc\x1b[D\x1b[DX\r", b"\x1b[A\r"])
    finally:
        os.close(fd)
        os.waitpid(pid, 0)
    assert "got 'aXbc'" in output  # the arrow keys moved the cursor, not typed ^[[D
    assert output.count("got 'aXbc'") == 2  # Up recalled it


def _talk(fd: int, keys: list[bytes]) -> str:
    import select
    import time

    seen = b""
    deadline = time.monotonic() + 60
    pending = list(keys)
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the child exited
                break
            if not chunk:
                break
            seen += chunk
        if pending and seen.count(b"? ") > len(keys) - len(pending):
            os.write(fd, pending.pop(0))
    return seen.decode(errors="replace")


def test_chat_runs_without_a_terminal() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from langchain_fusion.cli.search import _line_editing; _line_editing()"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stderr == ""
