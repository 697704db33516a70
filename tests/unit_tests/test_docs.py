"""The documentation site stays true to the code.

* every relative link in ``docs/**/*.md`` points to an existing page, and every ``#anchor`` to a
  heading (or an API object rendered by mkdocstrings) of that page;
* ``docs/cli.md`` has a section for every subcommand of the ``langchain-fusion`` CLI;
* every ```` ```python ```` block preceded by ``<!-- test -->`` in ``docs/getting-started.md`` and
  ``docs/how-to/*.md`` runs, offline: the blocks of one page run in order in one namespace, in a
  temporary directory holding ``manual.pdf`` (the sample manual, as ``write_sample_pdf`` writes
  it for a newcomer), with the local embedding model replaced by a
  fast hashing embedding (same class, same 384 dimensions, so saved indexes load as usual) and no
  ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import shutil
import subprocess
import sys
import unicodedata
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from langchain_fusion.cli import build_parser
from langchain_fusion.dense.embeddings import LocalEmbeddings
from langchain_fusion.ingest import write_sample_pdf

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
RUNNABLE_PAGES = [
    ROOT / "README.md",
    DOCS / "index.md",
    DOCS / "getting-started.md",
    *sorted((DOCS / "how-to").glob("*.md")),
]

_FENCE = re.compile(
    r"^(?P<fence>`{3,}|~{3,})[^\n]*\n.*?^(?P=fence)[ \t]*$", re.MULTILINE | re.DOTALL
)
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\((?P<target><[^>]+>|[^)\s]+)(?:\s+\"[^\"]*\")?\)"
)
_HEADING = re.compile(r"^(?P<level>#{1,6})\s+(?P<title>.+?)\s*#*\s*$", re.MULTILINE)
_ATTR_ID = re.compile(r"\{[^}]*#(?P<id>[\w-]+)[^}]*\}")
_API_DIRECTIVE = re.compile(r"^::: (?P<identifier>[\w.]+)", re.MULTILINE)
_TESTED_BLOCK = re.compile(
    r"^<!-- test -->[ \t]*\n```python[^\n]*\n(?P<code>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL
)
_ANY_PYTHON_BLOCK = re.compile(r"^```python", re.MULTILINE)


def _prose(markdown: str) -> str:
    """The page without fenced code blocks and inline code (links there are not links)."""
    return _INLINE_CODE.sub("", _FENCE.sub("", markdown))


def _slugify(title: str) -> str:
    """Python-Markdown's ``toc`` slug: what mkdocs uses for heading anchors."""
    title = re.sub(r"<[^>]+>", "", _ATTR_ID.sub("", title))
    title = re.sub(r"`([^`]*)`", r"\1", title)
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)
    title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    title = re.sub(r"[^\w\s-]", "", title).strip().lower()
    return re.sub(r"[-\s]+", "-", title)


def _anchors(page: Path) -> set[str]:
    """Heading slugs (deduplicated like ``toc``: ``x``, ``x_1``...) and explicit ``{#id}``s."""
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    anchors: set[str] = set()
    for match in _HEADING.finditer(text):
        explicit = _ATTR_ID.search(match["title"])
        slug = explicit["id"] if explicit else _slugify(match["title"])
        unique, n = slug, 1
        while unique in anchors:
            unique, n = f"{slug}_{n}", n + 1
        anchors.add(unique)
    anchors.update(m["id"] for m in _ATTR_ID.finditer(text))
    return anchors


def _api_object_exists(page: Path, anchor: str) -> bool:
    """Whether ``anchor`` names an object rendered by a ``::: identifier`` line of ``page``."""
    text = page.read_text(encoding="utf-8")
    roots = [m["identifier"] for m in _API_DIRECTIVE.finditer(text)]
    if not any(anchor == r or anchor.startswith(r + ".") for r in roots):
        return False
    parts = anchor.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for name in parts[split:]:
                obj = getattr(obj, name) if not isinstance(obj, dict) else obj[name]
        except (AttributeError, KeyError):
            return False
        return True
    return False


def _links(page: Path) -> Iterator[str]:
    for match in _LINK.finditer(_prose(page.read_text(encoding="utf-8"))):
        target = match["target"].strip("<>")
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # not http:, mailto:...
            yield target


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_internal_links_resolve(page: Path) -> None:
    broken = []
    for target in _links(page):
        path_part, _, anchor = target.partition("#")
        if path_part.startswith("/"):
            broken.append(f"{target} (absolute link: use a path relative to the page)")
            continue
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.is_file():
            broken.append(f"{target} (no such file)")
            continue
        if DOCS not in dest.parents:
            broken.append(f"{target} (outside docs/: the site will not contain it)")
            continue
        if (
            anchor
            and dest.suffix == ".md"
            and anchor not in _anchors(dest)
            and not _api_object_exists(dest, anchor)
        ):
            broken.append(f"{target} (no heading or API object #{anchor} in {dest.name})")
    assert not broken, f"{page.relative_to(ROOT)} has broken links: {broken}"


def test_link_checker_catches_broken_links(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Title\n\n## Second part\n", encoding="utf-8")
    page = tmp_path / "b.md"
    page.write_text(
        "[ok](a.md#second-part) [bad anchor](a.md#third) [gone](c.md) `[code](x.md)`\n"
        "```\n[fenced](y.md)\n```\n[web](https://example.com)\n",
        encoding="utf-8",
    )
    assert list(_links(page)) == ["a.md#second-part", "a.md#third", "c.md"]
    assert _anchors(tmp_path / "a.md") == {"title", "second-part"}


def test_slugify_matches_toc() -> None:
    assert _slugify("Convex fusion: `alpha` & weights") == "convex-fusion-alpha-weights"
    assert _slugify("When to use RRF?") == "when-to-use-rrf"
    assert _slugify("Min-max, z-score and DBSF") == "min-max-z-score-and-dbsf"


# ------------------------------------------------------------------------------------ CLI


def _cli_commands() -> list[str]:
    parser = build_parser()
    for action in parser._actions:
        choices = getattr(action, "choices", None)
        if isinstance(choices, dict):
            return list(choices)
    return []


def test_cli_reference_documents_every_command() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    commands = _cli_commands()
    assert {"index", "search", "ask", "chat"} <= set(commands)
    headings = {m["title"].strip() for m in _HEADING.finditer(_FENCE.sub("", text))}
    missing = [c for c in commands if f"`langchain-fusion {c}`" not in headings]
    assert not missing, (
        f"docs/cli.md has no '## `langchain-fusion COMMAND`' section for {missing}; add one with "
        "a '<!-- cli-help: COMMAND -->' line (the docs build expands it into the --help text)"
    )
    markers = re.findall(r"^<!-- cli-help: ([\w-]+) -->$", text, re.MULTILINE)
    assert sorted(markers) == sorted(commands), "one help marker per command, none for others"


def _hooks() -> Any:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("docs_hooks", module)  # dataclasses look their module up there
    spec.loader.exec_module(sys.modules["docs_hooks"])
    return sys.modules["docs_hooks"]


def test_cli_help_is_generated_for_every_command() -> None:
    hooks = _hooks()
    for command in _cli_commands():
        assert hooks.cli_help(command).startswith(f"usage: langchain-fusion {command}")
    page = hooks.on_page_markdown("<!-- cli-help: search -->\n")
    assert page.startswith("```text\nusage: langchain-fusion search") and "--explain" in page
    with pytest.raises(ValueError, match="does not have"):
        hooks.cli_help("no-such-command")


def test_error_index_covers_the_package() -> None:
    hooks = _hooks()
    messages = hooks.error_messages()
    texts = {m.text for m in messages}
    assert "alpha must be in [0, 1], got {value}" in texts
    assert (
        "delete() needs ids=[...] or filter=...; to delete every document pass filter={}" in texts
    )
    assert any(m.kind == "CorruptIndexError" for m in messages)
    assert any(m.kind == "CLIError" and m.text.startswith("index not found") for m in messages)
    assert any(m.kind == "UserWarning" for m in messages)  # warnings are listed too
    modules = {m.module for m in messages}
    assert {
        "langchain_fusion.retriever",
        "langchain_fusion.index",
        "langchain_fusion.qa",
    } <= modules
    markdown = hooks.error_index_markdown(messages)
    assert "[" not in markdown.split("| raised | message |", 1)[1].replace("|---|---|", "")
    assert "<!-- error-index -->" in (DOCS / "troubleshooting.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------ examples


def _make_pdf(pages: Sequence[Sequence[str]]) -> bytes:
    """A minimal valid PDF with one text line per string (Helvetica), readable by pypdf."""
    objects: list[bytes] = [b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    pages_id = 1 + 2 * len(pages) + 1
    for lines in pages:
        escaped = [
            line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in lines
        ]
        shown = b" ".join(b"(" + line.encode() + b")'" for line in escaped)
        stream = b"BT /F1 11 Tf 72 720 Td 14 TL " + shown + b" ET"
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        objects.append(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 1 0 R >> >> /Contents %d 0 R >>" % (pages_id, len(objects))
        )
    kids = b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(len(pages)))
    objects.append(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(pages)))
    objects.append(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        len(objects),
        xref,
    )
    return bytes(out)


MANUAL_PDF_PAGES = [
    [
        "Lumen-7 installation guide",
        "Mount the unit on a solid wall, indoors, out of direct sunlight.",
        "Keep 20 cm of free space around the air vents.",
    ],
    [
        "Troubleshooting",
        "Error E-217: the cells are too cold to charge.",
        "Charging resumes when the cells warm up above 5 degrees C.",
        "To reset the battery management system, run lumenctl --reset-bms.",
    ],
]


def _hash_encode(self: LocalEmbeddings, texts: Sequence[str], *, progress: bool) -> Any:
    """Stand-in for the model: hashed bag of words, 384 dims, unit length, deterministic."""
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
def docs_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(LocalEmbeddings, "_encode", _hash_encode)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    write_sample_pdf(tmp_path / "manual.pdf")  # what the examples' first line does
    try:
        import pytest_socket
    except ImportError:
        yield tmp_path
        return
    pytest_socket.disable_socket(allow_unix_socket=True)
    try:
        yield tmp_path
    finally:
        pytest_socket.enable_socket()


def _tested_blocks(page: Path) -> list[str]:
    return [m["code"] for m in _TESTED_BLOCK.finditer(page.read_text(encoding="utf-8"))]


def test_make_pdf_is_readable(tmp_path: Path) -> None:
    from langchain_fusion.ingest import ingest

    (tmp_path / "small.pdf").write_bytes(_make_pdf(MANUAL_PDF_PAGES))
    result = ingest([tmp_path / "small.pdf"], show_progress=False)
    assert [c.metadata["page"] for c in result.chunks] == [1, 2]
    assert "E-217" in result.chunks[1].page_content


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_run(page: Path, docs_sandbox: Path) -> None:
    blocks = _tested_blocks(page)
    if not _ANY_PYTHON_BLOCK.search(page.read_text(encoding="utf-8")):
        pytest.skip("no Python example on this page")
    assert blocks, f"{page.name} has Python examples but none is marked <!-- test -->"
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # CommunitySunsetWarning, on purpose
        warnings.filterwarnings("ignore", message=".*langchain-community.*", category=Warning)
        for number, code in enumerate(blocks, 1):
            try:
                exec(compile(code, f"{page.name}[block {number}]", "exec"), namespace)
            except Exception as exc:
                pytest.fail(f"{page.name}, example {number} raised {exc!r}:\n{code}")


# ------------------------------------------------------------------------------------ build


@pytest.mark.slow
def test_strict_docs_build(tmp_path: Path) -> None:
    pytest.importorskip("mkdocstrings_handlers.python")
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or shutil.which("mkdocs")
    if mkdocs is None:
        pytest.skip("mkdocs is not installed")
    done = subprocess.run(
        # No --quiet: mkdocs 1.6 then drops warnings before --strict counts them (exit 0).
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    warnings_logged = [line for line in done.stderr.splitlines() if line.startswith("WARNING")]
    assert done.returncode == 0 and not warnings_logged, "\n".join(warnings_logged) or done.stderr
    assert (tmp_path / "site" / "api" / "retriever" / "index.html").is_file()
