"""Hardening (issue 15), ingestion: each attack of the campaign, as a test that holds.

* item 7: a folder with a symlink loop loads the other files; the looping entries are skipped
  with a reason;
* item 9: a 2 KB PDF whose page tree lists one 190 KB content stream thousands of times is
  skipped by a page budget, and slow pages by a time budget, with the reason;
* item 10: decoded binary (no NUL in the first 8 KB, or a UTF-16 BOM followed by random bytes)
  is skipped, not indexed as garbage;
* item 16: pypdf's log lines become notes instead of stray stderr lines, and no progress bar
  runs into the "no files found" error.
"""

from __future__ import annotations

import codecs
import os
import random
import re
import sys
import zlib
from pathlib import Path

import pytest

from langchain_fusion.cli import main
from langchain_fusion.ingest import DEFAULT_MAX_PDF_PAGES, ingest, load_documents, sample_path

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def load(paths: object, **kwargs: object) -> object:
    return load_documents(paths, show_progress=False, **kwargs)  # type: ignore[arg-type]


def reasons(result: object) -> dict[str, str]:
    return {s.path.name: s.reason for s in result.skipped}  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------ item 7


needs_symlinks = pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges")


@needs_symlinks
def test_symlink_loops_are_skipped_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "ok.md").write_text("# Setup\n\nRun lumenctl --status.\n")
    os.symlink("b.txt", tmp_path / "a.txt")  # a -> b -> a
    os.symlink("a.txt", tmp_path / "b.txt")
    os.symlink("self.md", tmp_path / "self.md")
    os.symlink("gone.txt", tmp_path / "broken.txt")
    os.symlink(".", tmp_path / "again")  # a folder loop: not followed, files read once
    result = load(tmp_path)
    assert [d.metadata["file_name"] for d in result.documents] == ["ok.md"]  # type: ignore[attr-defined]
    why = reasons(result)
    assert set(why) == {"a.txt", "b.txt", "self.md", "broken.txt"}
    assert all(why[name].startswith("symlink loop") for name in ("a.txt", "b.txt", "self.md"))
    assert why["broken.txt"].startswith("broken symlink") and "gone.txt" in why["broken.txt"]
    assert "symlink loop" in result.summary()  # type: ignore[attr-defined]


@needs_symlinks
def test_a_looping_path_given_explicitly(tmp_path: Path) -> None:
    good = tmp_path / "ok.txt"
    good.write_text("hello world")
    os.symlink("loop.txt", tmp_path / "loop.txt")
    result = load([tmp_path / "loop.txt", good])
    assert reasons(result) == {"loop.txt": reasons(result)["loop.txt"]}
    assert len(result.documents) == 1  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"nothing could be loaded.*found 1 file.*symlink loop"):
        load(tmp_path / "loop.txt")
    only_loops = tmp_path / "loops"
    only_loops.mkdir()
    os.symlink("x.txt", only_loops / "x.txt")
    with pytest.raises(ValueError, match="symlink loop"):  # not "no files found"
        load(only_loops)


# ------------------------------------------------------------------------------------ item 9


def page_tree_bomb(levels: int, fan: int, stream_kb: int = 190) -> bytes:
    """A PDF of ``fan ** levels`` pages in a few KB: every tree node lists one child ``fan`` times,
    and every page shows the same ``stream_kb`` KB content stream (compressed to a few hundred
    bytes), which pypdf parses again for each page."""
    line = b"BT /F1 9 Tf 10 10 Td (spam spam) Tj ET\n"
    content = zlib.compress(line * (stream_kb * 1024 // len(line)), 9)
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        4: b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream"
        % (len(content), content),
        5: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>",
    }
    child, count = 5, 1
    for level in range(levels):
        count *= fan
        number = 2 if level == levels - 1 else 6 + level
        kids = b" ".join([b"%d 0 R" % child] * fan)
        objects[number] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count)
        child = number
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    size = max(objects) + 1
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(b"%010d 00000 n \n" % offsets[n] for n in range(1, size))
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def test_page_tree_bomb_is_skipped_by_the_page_budget(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.pdf"
    bomb.write_bytes(page_tree_bomb(levels=6, fan=5))  # 15,625 pages of 190 KB each
    assert bomb.stat().st_size < 2_500
    good = tmp_path / "notes.txt"
    good.write_text("Error E-217: the cells are too cold to charge.")
    result = ingest([bomb, good], show_progress=False)  # the defaults
    assert [f.name for f in result.files] == ["notes.txt"]
    why = reasons(result)["bomb.pdf"]
    assert why.startswith(f"over the page budget: more than {DEFAULT_MAX_PDF_PAGES} pages")
    assert "max_pdf_pages" in why


def test_slow_pages_are_skipped_by_the_time_budget(tmp_path: Path) -> None:
    bomb = tmp_path / "slow.pdf"
    bomb.write_bytes(page_tree_bomb(levels=2, fan=2))  # 4 pages, each a 190 KB stream
    result = load([bomb, sample_path()], max_seconds_per_file=0.01)
    why = reasons(result)["slow.pdf"]
    assert re.match(r"over the time budget: [01] of 4 pages read in [\d.]+ s, budget 0.01 s", why)
    assert "max_seconds_per_file" in why
    small = load([bomb, sample_path()], max_pdf_pages=3)
    assert reasons(small)["slow.pdf"].startswith("over the page budget: more than 3 pages")


@pytest.mark.parametrize(
    ("option", "value"),
    [("max_pdf_pages", 0), ("max_pdf_pages", True), ("max_seconds_per_file", 0)],
)
def test_budgets_are_checked(tmp_path: Path, option: str, value: object) -> None:
    with pytest.raises(ValueError, match=option):
        load(sample_path(), **{option: value})


# ------------------------------------------------------------------------------------ item 10


def test_decoded_binary_is_skipped(tmp_path: Path) -> None:
    rng = random.Random(15)
    (tmp_path / "no_nul.txt").write_bytes(bytes(rng.randrange(1, 256) for _ in range(20_000)))
    (tmp_path / "bom16.txt").write_bytes(
        codecs.BOM_UTF16_LE + bytes(rng.randrange(256) for _ in range(20_000))
    )
    (tmp_path / "late_binary.md").write_bytes(
        b"# Notes\n\n" + b"plain text. " * 1_000 + bytes(rng.randrange(256) for _ in range(4_000))
    )
    (tmp_path / "utf16.txt").write_bytes("Grüße aus Köln, 日本語のテキスト\n".encode("utf-16"))
    (tmp_path / "cp1252.txt").write_bytes(
        "caf\u00e9 \u2013 \u201cquoted\u201d 5 \u20ac\n".encode("cp1252")
    )
    (tmp_path / "colours.log.txt").write_bytes(b"\x1b[31merror\x1b[0m disk full\n" * 200)
    result = load(tmp_path)
    why = reasons(result)
    assert set(why) == {"no_nul.txt", "bom16.txt", "late_binary.md"}
    assert all(reason.startswith("binary or garbled content") for reason in why.values())
    assert "from character 12288" in why["late_binary.md"]  # found after the first 8 KB
    loaded = sorted(d.metadata["file_name"] for d in result.documents)  # type: ignore[attr-defined]
    assert loaded == ["colours.log.txt", "cp1252.txt", "utf16.txt"]


def test_real_text_is_never_garbage() -> None:
    assert load(sample_path()).skipped == []  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------ item 16


def truncated_pdf() -> bytes:
    from tests.unit_tests.test_docs import _make_pdf

    return _make_pdf([["hello world"]])[: -len(b"%%EOF\n")]


def test_pypdf_log_lines_become_notes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cut.pdf").write_bytes(truncated_pdf())
    (tmp_path / "ok.txt").write_text("hello world")
    result = load(tmp_path)
    assert capsys.readouterr().err == ""
    assert any("EOF marker not found" in note for note in result.notes)  # type: ignore[attr-defined]
    assert "cut.pdf" in reasons(result)


def test_cli_prints_one_error_line_for_a_truncated_pdf(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cut.pdf").write_bytes(truncated_pdf())
    assert main(["index", str(tmp_path / "cut.pdf"), "--out", str(tmp_path / "i")]) == 1
    err = capsys.readouterr().err
    assert "EOF marker" not in err and "CAUTION" not in err
    assert [line for line in err.splitlines() if line.strip()][-1].startswith("error: nothing")


def test_no_progress_bar_before_no_files_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="no files found"):
        load_documents(tmp_path, show_progress=True)
    assert capsys.readouterr().err == ""
    assert main(["index", str(tmp_path), "--out", str(tmp_path / "i")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no files found") and err.count("\n") == 1
