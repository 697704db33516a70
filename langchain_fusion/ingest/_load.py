"""Load PDF, text, Markdown and reStructuredText files (and folders of them) as Documents."""

from __future__ import annotations

import codecs
import contextlib
import errno
import fnmatch
import hashlib
import io
import logging
import os
import re
import sys
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from langchain_core.documents import Document

__all__ = [
    "DEFAULT_MAX_PDF_PAGES",
    "SUPPORTED_EXTENSIONS",
    "LoadResult",
    "PathInput",
    "SkippedFile",
    "load_documents",
    "plural",
    "skipped_tail",
]

PathInput = Union[str, "os.PathLike[str]"]

#: File extension (lower case) -> ``metadata["file_type"]``.
SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".pdf": "pdf",
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
}

# Formats people often drop into a document folder, with what to do about them.
_KNOWN_UNSUPPORTED = {
    ".doc": "save it as PDF first",
    ".docx": "save it as PDF first",
    ".odt": "save it as PDF first",
    ".rtf": "save it as PDF or text first",
    ".pages": "export it as PDF first",
    ".ppt": "save it as PDF first",
    ".pptx": "save it as PDF first",
    ".odp": "save it as PDF first",
    ".xls": "export it as CSV/text first",
    ".xlsx": "export it as CSV/text first",
    ".ods": "export it as CSV/text first",
    ".epub": "convert it to PDF or text first",
    ".html": "convert it to Markdown or text first",
    ".htm": "convert it to Markdown or text first",
}

_SNIFF_BYTES = 8192

#: Default page budget of one PDF: a bigger one is skipped with the reason (``max_pdf_pages``).
DEFAULT_MAX_PDF_PAGES = 10_000
_SECONDS_BASE = 30.0  # default time budget of one PDF: 30 s plus 60 s per MB of file
_SECONDS_PER_MB = 60.0
_MAX_SUMMARY_NAMES = 5


@dataclass(frozen=True)
class SkippedFile:
    """A file that was found but not loaded, and why.

    Attributes:
        path: The file (absolute, resolved).
        reason: A human-readable reason, e.g. ``"encrypted PDF (needs a password)"``.

    Example:
        >>> from pathlib import Path
        >>> skipped = SkippedFile(Path("/docs/scan.pdf"), "encrypted PDF (needs a password)")
        >>> str(skipped)
        'scan.pdf (encrypted PDF (needs a password))'

    """

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path.name} ({self.reason})"


@dataclass
class LoadResult:
    """What :func:`load_documents` found.

    Attributes:
        documents: One ``Document`` per PDF page that has text and one per text file, in file
            order (files sorted within each folder, pages in order).
        skipped: Files found but not loaded, with the reason.
        files: The files that produced at least one document, in load order.
        notes: Things worth knowing that did not stop a file from loading, e.g. a text file
            decoded as cp1252 because it was not valid UTF-8, or PDF pages without a text layer.

    Example:
        >>> from langchain_core.documents import Document
        >>> from pathlib import Path
        >>> r = LoadResult([Document("hi")], [SkippedFile(Path("a.bin"), "binary file")],
        ...                [Path("a.txt")])
        >>> r.summary()
        '1 file, 1 document; skipped 1: a.bin (binary file)'

    """

    documents: list[Document]
    skipped: list[SkippedFile]
    files: list[Path]
    notes: list[str] = field(default_factory=list)

    @property
    def sources(self) -> list[str]:
        """The ``metadata["source"]`` value of each loaded file, in load order.

        Example:
            >>> LoadResult([], [], [Path("/tmp/a.txt")]).sources
            ['/tmp/a.txt']

        """
        return [str(path) for path in self.files]

    def summary(self) -> str:
        """One readable line: files, documents and skipped files with their reasons.

        Example:
            >>> LoadResult([], [], []).summary()
            '0 files, 0 documents'

        """
        head = f"{plural(len(self.files), 'file')}, {plural(len(self.documents), 'document')}"
        return head + skipped_tail(self.skipped)


def plural(n: int, word: str) -> str:
    """Return ``"1 file"`` or ``"3 files"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def skipped_tail(skipped: Sequence[SkippedFile]) -> str:
    """Return ``"; skipped 2: a.bin (binary file), ..."`` for a summary line (``""`` if none)."""
    if not skipped:
        return ""
    shown = ", ".join(str(s) for s in skipped[:_MAX_SUMMARY_NAMES])
    more = len(skipped) - _MAX_SUMMARY_NAMES
    if more > 0:
        shown += f" and {more} more"
    return f"; skipped {len(skipped)}: {shown}"


# --------------------------------------------------------------------------------------------------
# Finding files
# --------------------------------------------------------------------------------------------------


def _as_path_list(paths: PathInput | Sequence[PathInput]) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        items: list[object] = [paths]
    elif isinstance(paths, Sequence):
        items = list(paths)
    else:
        msg = (
            f"paths must be a str, a Path or a sequence of them, got {type(paths).__name__} "
            f"{paths!r}"
        )
        raise TypeError(msg)
    if not items:
        msg = "paths must name at least one file or folder, got an empty sequence"
        raise ValueError(msg)
    result = []
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            msg = f"paths must contain str or Path items, got {type(item).__name__} {item!r}"
            raise TypeError(msg)
        result.append(Path(item).expanduser())
    return result


def _glob_matches(relative: Path, pattern: str) -> bool:
    if "/" in pattern:
        return fnmatch.fnmatch(relative.as_posix(), pattern)
    return fnmatch.fnmatch(relative.name, pattern)


def _walk_folder(folder: Path, *, recursive: bool, glob: str | None) -> list[Path]:
    """Files inside ``folder`` (hidden files and folders excluded), sorted by relative path."""
    found: list[Path] = []
    for root, dirnames, filenames in os.walk(folder):
        dirnames[:] = [] if not recursive else [d for d in dirnames if not d.startswith(".")]
        root_path = Path(root)
        for name in filenames:
            if name.startswith("."):
                continue
            file = root_path / name
            relative = file.relative_to(folder)
            if glob is not None and not _glob_matches(relative, glob):
                continue
            found.append(relative)
    found.sort(key=lambda p: p.parts)
    return [folder / p for p in found]


def _link_problem(path: Path) -> str | None:
    """Why the symbolic link ``path`` cannot be followed (a loop, a missing target), or None."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop (following the link leads back to it): fix or delete the link"
        if exc.errno == errno.ENOENT and path.is_symlink():
            return f"broken symlink (its target {os.readlink(path)!r} does not exist)"
        return f"unreadable: {exc.strerror or exc}"
    return None


def _collect_files(
    paths: list[Path], *, recursive: bool, glob: str | None
) -> tuple[list[tuple[Path, bool]], list[Path], list[SkippedFile]]:
    """Find the files to load: ``[(file, given_explicitly)]``, folders scanned, links skipped.

    Files are deduplicated in order; symbolic links that loop or lead nowhere are skipped.
    """
    missing = [p for p in paths if not p.exists() and not p.is_symlink()]
    if missing:
        names = ", ".join(repr(str(p)) for p in missing)
        msg = f"no such file or folder: {names}"
        raise FileNotFoundError(msg)
    files: list[tuple[Path, bool]] = []
    folders: list[Path] = []
    skipped: list[SkippedFile] = []
    seen: set[Path] = set()
    for given in paths:
        problem = _link_problem(given)
        if problem is not None:
            skipped.append(SkippedFile(given.absolute(), problem))
            continue
        resolved = given.resolve()
        if resolved.is_dir():
            folders.append(resolved)
            candidates = [
                (f, False) for f in _walk_folder(resolved, recursive=recursive, glob=glob)
            ]
        else:
            candidates = [(resolved, True)]
        for file, explicit in candidates:
            problem = _link_problem(file)
            if problem is not None:
                skipped.append(SkippedFile(file, problem))
                continue
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                files.append((key, explicit))
    return files, folders, skipped


# --------------------------------------------------------------------------------------------------
# Reading one file
# --------------------------------------------------------------------------------------------------


class _SkipFileError(Exception):
    """Raised inside a reader to skip the current file with a reason."""


def _looks_binary(data: bytes) -> bool:
    head = data[:_SNIFF_BYTES]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    return b"\x00" in head


# Characters that text does not contain but decoded binary does: C0 controls other than
# \t \n \v \f \r and ESC (ANSI colours in logs), DEL and C1 controls (latin-1 fallback), the
# replacement character (undecodable UTF-16) and the private-use area (random UTF-16 code units).
_GARBAGE = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x9f\ufffd\ue000-\uf8ff]")
_GARBAGE_WINDOW = 4096  # characters: a binary tail after a text header is found too
_GARBAGE_SHARE = 0.05  # random bytes score about 23 %, random UTF-16 about 13 %, text 0


def _garbage_reason(text: str) -> str | None:
    """Why ``text`` is decoded binary rather than text (None when it looks like text).

    Checked window by window over the whole text, so binary content that starts after a text
    header (the NUL check only sees the first 8 KB) is found as well.
    """
    for start in range(0, len(text), _GARBAGE_WINDOW):
        window = text[start : start + _GARBAGE_WINDOW]
        bad = len(_GARBAGE.findall(window))
        if bad >= 3 and bad > _GARBAGE_SHARE * len(window):
            return (
                f"binary or garbled content, not text ({bad} of {len(window)} characters from "
                f"character {start} are control, undecodable or private-use characters)"
            )
    return None


def _decode_text(data: bytes) -> tuple[str, str]:
    """Decode text bytes: UTF-8 (with or without BOM), UTF-16 with BOM, else cp1252 / latin-1."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _base_metadata(path: Path, data: bytes, file_type: str) -> dict[str, object]:
    return {
        "source": str(path),
        "file_name": path.name,
        "page": None,
        "file_sha256": hashlib.sha256(data).hexdigest(),
        "file_type": file_type,
    }


def _file_key(path: Path) -> str:
    return hashlib.sha1(str(path).encode("utf-8")).hexdigest()[:12]


def _read_text(path: Path, data: bytes, file_type: str, notes: list[str]) -> list[Document]:
    if _looks_binary(data):
        raise _SkipFileError("binary file")
    text, encoding = _decode_text(data)
    garbage = _garbage_reason(text)  # NUL bytes after 8 KB, random bytes, random UTF-16...
    if garbage is not None:
        raise _SkipFileError(garbage)
    text = _normalize_newlines(text)
    if not text.strip():
        raise _SkipFileError("no text (whitespace only)")
    if encoding in ("cp1252", "latin-1"):
        notes.append(f"{path.name}: not valid UTF-8, decoded as {encoding}")
    metadata = _base_metadata(path, data, file_type)
    metadata["encoding"] = encoding
    return [Document(page_content=text, metadata=metadata, id=_file_key(path))]


def _clean_pdf_text(text: str) -> str:
    """Tidy extracted PDF text for search.

    NFKC turns ligatures such as "ﬁ" into "fi" (so "ﬁnal" matches "final"); trailing spaces on
    lines and blank lines at the ends go.
    """
    lines = unicodedata.normalize("NFKC", _normalize_newlines(text)).split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


@dataclass(frozen=True)
class _Budget:
    """Limits on one file: pages (PDF) and seconds of text extraction."""

    max_pages: int | None = DEFAULT_MAX_PDF_PAGES
    max_seconds: float | None = None  # None: 30 s + 60 s per MB of file

    def seconds_for(self, size: int) -> float:
        if self.max_seconds is not None:
            return self.max_seconds
        return _SECONDS_BASE + _SECONDS_PER_MB * size / 1e6


class _LogCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().strip()
        if message and message not in self.messages:
            self.messages.append(message)


@contextlib.contextmanager
def _pypdf_log(path: Path, notes: list[str]) -> Iterator[None]:
    """Turn what pypdf logs (``EOF marker not found``...) into notes, not stray stderr lines."""
    logger = logging.getLogger("pypdf")
    collector = _LogCollector()
    propagate = logger.propagate
    logger.addHandler(collector)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(collector)
        logger.propagate = propagate
        shown = collector.messages[:3]
        if shown:
            more = len(collector.messages) - len(shown)
            tail = f" and {more} more" if more > 0 else ""
            notes.append(f"{path.name}: pypdf: {'; '.join(shown)}{tail}")


def _count_pdf_pages(reader: object, limit: int) -> int:
    """Count the leaves of the page tree, stopping past ``limit`` (returns ``limit + 1`` then).

    pypdf flattens the whole tree first; a tree whose nodes list the same child many times holds
    exponentially many pages in a few bytes, so it is counted here, with a stop, before that.
    """
    root = reader.trailer["/Root"].get_object()["/Pages"].get_object()  # type: ignore[attr-defined]
    stack = [root]
    pages = nodes = 0
    while stack:
        node = stack.pop()
        nodes += 1
        kids = node.get("/Kids") if hasattr(node, "get") else None
        if kids is None:
            pages += 1
        else:
            stack.extend(kid.get_object() for kid in kids.get_object())
        if pages > limit or nodes > 4 * limit + 16:  # (a looping tree never ends either)
            return limit + 1
    return pages


def _read_pdf(
    path: Path, data: bytes, notes: list[str], budget: _Budget | None = None
) -> list[Document]:
    budget = budget or _Budget()
    with _pypdf_log(path, notes):
        return _read_pdf_pages(path, data, notes, budget)


def _read_pdf_pages(path: Path, data: bytes, notes: list[str], budget: _Budget) -> list[Document]:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    if b"%PDF-" not in data[:1024]:  # the header may follow a little junk
        raise _SkipFileError("not a PDF (no %PDF header)")
    start = time.monotonic()
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise _SkipFileError("encrypted PDF (needs a password)")
        if budget.max_pages is not None:
            try:
                counted = _count_pdf_pages(reader, budget.max_pages)
            except Exception:  # a damaged tree: pypdf says what is wrong below
                counted = 0
            if counted > budget.max_pages:
                raise _SkipFileError(
                    f"over the page budget: more than {budget.max_pages} pages (a PDF made to be "
                    "slow?); split it, or raise max_pdf_pages to read it"
                )
        pages = list(reader.pages)
    except _SkipFileError:
        raise
    except DependencyError as exc:
        msg = f"encrypted PDF: reading it needs the 'cryptography' package ({exc})"
        raise _SkipFileError(msg) from exc
    except Exception as exc:  # pypdf raises many exception types for damaged files
        msg = f"unreadable: damaged PDF ({type(exc).__name__}: {exc})"
        raise _SkipFileError(msg) from exc
    if not pages:
        raise _SkipFileError("PDF has no pages")

    base = _base_metadata(path, data, "pdf")
    key = _file_key(path)
    documents: list[Document] = []
    blank: list[int] = []
    failed: list[int] = []
    seconds = budget.seconds_for(len(data))
    for number, page in enumerate(pages, start=1):
        elapsed = time.monotonic() - start
        if elapsed > seconds:  # checked between pages: pages left, time spent
            raise _SkipFileError(
                f"over the time budget: {number - 1} of {len(pages)} pages read in "
                f"{elapsed:.3g} s, budget {seconds:g} s (a PDF made to be slow?); split it, "
                "or raise max_seconds_per_file to read it"
            )
        try:
            text = _clean_pdf_text(page.extract_text() or "")
        except Exception:  # one broken page should not lose the rest of the file
            failed.append(number)
            continue
        if not text.strip():
            blank.append(number)
            continue
        metadata = dict(base, page=number)
        documents.append(Document(page_content=text, metadata=metadata, id=f"{key}-p{number}"))
    if not documents:
        if failed:
            msg = f"unreadable: text extraction failed on all {len(pages)} pages"
            raise _SkipFileError(msg)
        raise _SkipFileError("no text layer (image-only PDF?): run OCR first")
    if blank:
        notes.append(
            f"{path.name}: {plural(len(blank), 'page')} without text skipped "
            f"(image-only? run OCR to include them): {_page_list(blank)}"
        )
    if failed:
        notes.append(f"{path.name}: text extraction failed on pages {_page_list(failed)}")
    return documents


def _page_list(pages: list[int], limit: int = 10) -> str:
    shown = ", ".join(map(str, pages[:limit]))
    return shown + (f" and {len(pages) - limit} more" if len(pages) > limit else "")


def _unsupported_reason(path: Path, data: bytes) -> str:
    suffix = path.suffix.lower()
    supported = ", ".join(SUPPORTED_EXTENSIONS)
    if suffix in _KNOWN_UNSUPPORTED:
        return f"unsupported extension {suffix}: {_KNOWN_UNSUPPORTED[suffix]}"
    if _looks_binary(data):
        return "binary file"
    if suffix:
        return f"unsupported extension {suffix} (supported: {supported})"
    return f"no file extension (supported: {supported})"


def _read(path: Path, limit: int | None = None) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read() if limit is None else handle.read(limit)
    except PermissionError as exc:
        raise _SkipFileError("unreadable: permission denied") from exc
    except OSError as exc:
        msg = f"unreadable: {exc.strerror or exc}"
        raise _SkipFileError(msg) from exc


def _load_file(
    path: Path, explicit: bool, notes: list[str], budget: _Budget | None = None
) -> list[Document]:
    """Documents of one file; raises ``_SkipFileError`` with the reason when it cannot be loaded."""
    if not path.is_file():  # a named pipe or socket would block or fail on read
        raise _SkipFileError("not a regular file")
    suffix = path.suffix.lower()
    file_type = SUPPORTED_EXTENSIONS.get(suffix)
    if file_type is None:
        # Only a peek at files we will probably not load (a folder may hold large videos).
        head = _read(path, _SNIFF_BYTES)
        if not head:
            raise _SkipFileError("empty file")
        if not explicit or _looks_binary(head) or suffix in _KNOWN_UNSUPPORTED:
            raise _SkipFileError(_unsupported_reason(path, head))
        file_type = "text"  # the user named this file: read it as plain text, not refuse it
    data = _read(path)
    if not data:
        raise _SkipFileError("empty file")
    if file_type == "pdf":
        return _read_pdf(path, data, notes, budget)
    return _read_text(path, data, file_type, notes)


def _progress(files: list[tuple[Path, bool]], show: bool) -> Iterator[tuple[Path, bool]]:
    if not show or not files:  # no bar for nothing: it would run into the error line that follows
        yield from files
        return
    from tqdm import tqdm

    bar = tqdm(files, desc="Loading", unit="file", file=sys.stderr, leave=False)
    try:
        for item in bar:
            bar.set_postfix_str(item[0].name, refresh=False)
            yield item
    finally:
        bar.close()


# --------------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------------


def load_documents(
    paths: PathInput | Sequence[PathInput],
    *,
    recursive: bool = True,
    glob: str | None = None,
    show_progress: bool = True,
    max_pdf_pages: int | None = DEFAULT_MAX_PDF_PAGES,
    max_seconds_per_file: float | None = None,
) -> LoadResult:
    r"""Load PDF, text, Markdown and reStructuredText files, or folders of them, as Documents.

    A PDF gives one ``Document`` per page that has a text layer; a text file gives one
    ``Document`` for the whole file. A folder means every file inside it, sorted by relative path
    (deterministic), hidden files and folders (names starting with ``.``) excluded. Files that
    cannot be loaded do not stop the run: they are reported in :attr:`LoadResult.skipped` with a
    reason such as ``"encrypted PDF (needs a password)"``, ``"no text layer (image-only PDF?): run
    OCR first"``, ``"binary file"``, ``"empty file"``, ``"unreadable: permission denied"`` or
    ``"unsupported extension .docx: save it as PDF first"``. Symbolic links that loop or lead
    nowhere are skipped too, and so is text that decodes to binary garbage (NUL bytes after the
    first 8 KB, random bytes, a UTF-16 byte-order mark followed by random bytes).

    Each PDF has a page budget and a time budget: a few kilobytes can describe thousands of
    pages that share one large content stream (hours of extraction). Past ``max_pdf_pages``
    pages, or ``max_seconds_per_file`` of extraction (checked between pages), the file is
    skipped with the reason.

    Supported extensions: ``.pdf`` (pypdf), ``.txt``/``.text``, ``.md``/``.markdown`` and ``.rst``.
    A file named explicitly (not found in a folder) with another extension is read as plain
    text when it is not binary. Text is decoded as UTF-8 (a BOM is honoured, UTF-16 with a BOM
    too) and falls back to cp1252, then latin-1, with a note in :attr:`LoadResult.notes`.
    Line endings are normalized to ``"\n"``.

    Metadata of each document:

    - ``source``: the file path made absolute and resolved, as ``str``;
    - ``file_name``: the file's name;
    - ``page``: 1-based page number for PDFs, ``None`` for text files;
    - ``file_sha256``: SHA-256 of the file's bytes (detects changed files);
    - ``file_type``: ``"pdf"``, ``"text"``, ``"markdown"`` or ``"rst"``;
    - ``encoding`` (text files only): the encoding used to decode it.

    ``Document.id`` is ``"<sha1(source)[:12]>-p<page>"`` for PDF pages and ``"<sha1(source)[:12]>"``
    for text files.

    Args:
        paths: A file or folder, or a sequence of them. Duplicates (the same file reached twice)
            are loaded once.
        recursive: Whether to descend into subfolders of a folder.
        glob: Only take folder files matching this pattern, e.g. ``"*.pdf"``; a pattern with a
            ``/`` is matched against the path relative to the folder. Files named explicitly are
            always taken.
        show_progress: Show a tqdm progress bar over files on stderr.
        max_pdf_pages: Skip a PDF with more pages (counted before any is read); ``None``: no
            limit.
        max_seconds_per_file: Skip a PDF whose text extraction takes longer; default (``None``)
            30 s plus 60 s per MB of file, which a normal PDF never comes near.

    Returns:
        The documents, the skipped files and the loaded files.

    Raises:
        FileNotFoundError: If a path does not exist (the message names every missing path).
        ValueError: If ``paths`` is empty, nothing could be loaded (an empty folder, or only
            skipped files: the message lists what was found and why it was skipped), or a budget
            is not positive.
        TypeError: If ``paths`` is not a path or a sequence of paths.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "notes.md").write_text("# Setup\n\nRun `lumenctl --status`.\n")
        >>> _ = (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
        >>> result = load_documents(folder, show_progress=False)
        >>> [d.metadata["file_name"] for d in result.documents]
        ['notes.md']
        >>> result.documents[0].metadata["file_type"], result.documents[0].metadata["page"]
        ('markdown', None)
        >>> result.summary()
        '1 file, 1 document; skipped 1: logo.png (binary file)'

    """
    if glob is not None and (not isinstance(glob, str) or not glob):
        msg = f"glob must be a non-empty pattern such as '*.pdf' or None, got {glob!r}"
        raise ValueError(msg)
    if max_pdf_pages is not None and (
        isinstance(max_pdf_pages, bool) or not isinstance(max_pdf_pages, int) or max_pdf_pages < 1
    ):
        msg = f"max_pdf_pages must be an integer >= 1 or None, got {max_pdf_pages!r}"
        raise ValueError(msg)
    if max_seconds_per_file is not None and (
        isinstance(max_seconds_per_file, bool)
        or not isinstance(max_seconds_per_file, (int, float))
        or not max_seconds_per_file > 0
    ):
        msg = f"max_seconds_per_file must be a number > 0 or None, got {max_seconds_per_file!r}"
        raise ValueError(msg)
    budget = _Budget(max_pdf_pages, max_seconds_per_file)
    path_list = _as_path_list(paths)
    files, folders, skipped = _collect_files(path_list, recursive=recursive, glob=glob)

    documents: list[Document] = []
    loaded: list[Path] = []
    notes: list[str] = []
    for file, explicit in _progress(files, show_progress):
        try:
            file_documents = _load_file(file, explicit, notes, budget)
        except _SkipFileError as skip:
            skipped.append(SkippedFile(file, str(skip)))
            continue
        documents.extend(file_documents)
        loaded.append(file)

    if not documents:
        given = ", ".join(repr(str(p)) for p in path_list)
        found = len({s.path for s in skipped} | {f for f, _ in files})
        if not found:
            where = "folder" if len(folders) == 1 and len(path_list) == 1 else "paths"
            pattern = f" matching {glob!r}" if glob else ""
            msg = f"no files{pattern} found in {where} {given}"
        else:
            msg = (
                f"nothing could be loaded from {given}: found {plural(found, 'file')}"
                f"{skipped_tail(skipped)}"
            )
        raise ValueError(msg)
    return LoadResult(documents=documents, skipped=skipped, files=loaded, notes=notes)
