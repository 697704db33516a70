"""Check a generated answer against the sources it was given.

[`verify_answer`][langchain_fusion.verify.verify_answer] applies checks that need no model:

* **Citations.** A citation ``[n]`` must point to one of the numbered sources (``1 <= n <=
  len(sources)``). Groups are understood: ``[1, 3]``, ``[1][2]``, ``[1-3]``, ``[Source 2]``.
  Invalid numbers are removed and the valid ones in the same group are kept, so ``[2, 9]``
  becomes ``[2]`` with three sources. Markdown links (``[1](url)``) and code are left alone.
* **Banned phrases** (optional). Phrases an answer must never contain ("as an AI language
  model", a competitor's name, "guaranteed"): each one found, whole words and case-insensitive,
  is reported in ``banned_phrases``. The text is left as it is (cutting words out of a sentence
  can change its meaning); the report is not ``ok``.
* **Quotes.** A quoted passage (``"..."``, ``“...”``, ``«...»`` or a Markdown ``>`` blockquote)
  of at least ``min_quote_words`` words must appear in one source. Its *support* is
  ``1 - d / m`` where ``m`` is the number of words in the quote and ``d`` the smallest word-level
  edit distance between the quote and any contiguous passage of one source (words are
  case-folded, Unicode-normalized and stripped of punctuation; an ellipsis splits a quote into
  parts that are matched separately). A quote reproduced word for word scores 1.0; one word
  changed, added or left out in a 10-word quote scores 0.9. A quote whose support is below
  ``quote_threshold`` is replaced by ``[unverified quote removed]``.

Short quotations (fewer than ``min_quote_words`` words) are usually terms or scare quotes and
are not checked.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from langchain_core.documents import Document
from numpy.typing import NDArray

__all__ = ["UNVERIFIED_QUOTE_MARKER", "VerificationReport", "quote_support", "verify_answer"]

UNVERIFIED_QUOTE_MARKER = "[unverified quote removed]"
"""Text that replaces a quotation the sources do not support."""

# A citation group: "[1]", "[1, 3]", "[1-3]", "[Source 2]", "[sources 1; 4]". Not a Markdown
# link "[1](url)" nor a reference definition "[1]: url".
_CITATION = re.compile(
    r"(?P<pre>[ \t]*)\[(?P<word>\s*sources?\s*)?"
    r"(?P<body>\d+(?:\s*(?:,|;|-|\u2013|\u2014|and)\s*(?:sources?\s*)?\d+)*)\s*\](?![(:])",
    re.IGNORECASE,
)
_CITATION_ITEM = re.compile(r"(\d+)(?:\s*[-\u2013\u2014]\s*(\d+))?")
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.DOTALL)
# A straight double quote opens a quotation only when not preceded by a letter or digit (so the
# inch marks in 'a 12" screen' are not quotes) and closes it only when not followed by one.
_INLINE_QUOTE = re.compile(r"(?<![\w\"])\"(\S[^\"]*?)\"(?![\w\"])|“([^”]+?)”|«([^»]+?)»")
_BLOCKQUOTE_LINE = re.compile(r"^ {0,3}>[ \t]?(.*)$")
_ELLIPSIS = re.compile(r"\.\s*\.\s*\.|…|\[\s*(?:\.\.\.|…)\s*\]")
_WORD = re.compile(r"\w+")
_SOFT_HYPHEN = re.compile(r"(\w)-[ \t]*\r?\n[ \t]*(?=[a-z])")
_MAX_RANGE = 1000


@dataclass(frozen=True)
class VerificationReport:
    """What [`verify_answer`][langchain_fusion.verify.verify_answer] found and changed.

    Attributes:
        text: The answer with invalid citations removed and unsupported quotes replaced.
        removed_citations: Source numbers that were cited but do not exist, in order of
            appearance (for an invalid range such as ``[2-9]`` with three sources, the
            out-of-range end, ``9``).
        unverified_quotes: The quotations (without quote marks) that no source supports.
        cited: Valid source numbers cited in ``text``, in order of first appearance.
        banned_phrases: The banned phrases found in the answer (as given in
            ``banned_phrases``), in the order given.

    Example:
        >>> report = verify_answer("Paris [1][7].", ["Paris is the capital of France."])
        >>> report.text, report.removed_citations, report.cited, report.ok
        ('Paris [1].', [7], [1], False)

    """

    text: str
    removed_citations: list[int] = field(default_factory=list)
    unverified_quotes: list[str] = field(default_factory=list)
    cited: list[int] = field(default_factory=list)
    banned_phrases: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was found: no citation removed, no quote replaced, no banned phrase.

        Example:
            >>> verify_answer("Paris [1].", ["Paris is the capital of France."]).ok
            True

        """
        return not self.unverified_quotes and not self.removed_citations and not self.banned_phrases


def verify_answer(
    answer: str,
    sources: Sequence[Document] | Sequence[str],
    *,
    quote_threshold: float = 0.9,
    min_quote_words: int = 4,
    marker: str = UNVERIFIED_QUOTE_MARKER,
    banned_phrases: Sequence[str] = (),
) -> VerificationReport:
    r"""Remove citations to missing sources and quotations the sources do not contain.

    Args:
        answer: The generated answer, citing sources as ``[n]`` (1-based).
        sources: The numbered sources, in the order the model saw them (documents or texts).
        quote_threshold: Minimum support (see the module docstring) for a quotation to be kept,
            in ``(0, 1]``. The default 0.9 lets a 10-word quote differ by one word.
        min_quote_words: Quotations shorter than this (in words) are not checked.
        marker: Text that replaces an unsupported quotation.
        banned_phrases: Phrases the answer must not contain; those found (whole words, case and
            spacing ignored) are listed in the report's ``banned_phrases``.

    Returns:
        A [`VerificationReport`][langchain_fusion.verify.VerificationReport].

    Raises:
        TypeError: If ``answer`` is not a string, a source is neither a Document nor a string,
            or ``banned_phrases`` is not a sequence of strings.
        ValueError: If ``quote_threshold`` or ``min_quote_words`` is out of range, or a banned
            phrase is blank.

    Example:
        >>> sources = ["The Eiffel Tower was completed in 1889 for the World's Fair."]
        >>> answer = 'It was "completed in 1889 for the World\'s Fair" [1][3].'
        >>> report = verify_answer(answer, sources)
        >>> report.text
        'It was "completed in 1889 for the World\'s Fair" [1].'
        >>> report.removed_citations
        [3]
        >>> verify_answer('It "opened to the public in 1925" [1].', sources).text
        'It [unverified quote removed] [1].'
        >>> verify_answer("As an AI model, I think Paris [1].", sources,
        ...               banned_phrases=["as an AI model", "I believe"]).banned_phrases
        ['as an AI model']

    """
    if not isinstance(answer, str):
        raise TypeError(f"answer must be a str, got {type(answer).__name__}")
    if not (0.0 < quote_threshold <= 1.0):
        raise ValueError(f"quote_threshold must be in (0, 1], got {quote_threshold!r}")
    if isinstance(min_quote_words, bool) or not isinstance(min_quote_words, int):
        raise TypeError(f"min_quote_words must be an int, got {min_quote_words!r}")
    if min_quote_words < 1:
        raise ValueError(f"min_quote_words must be >= 1, got {min_quote_words}")
    texts = _source_texts(sources)
    banned = _banned_patterns(banned_phrases)

    text, removed = _fix_citations(answer, len(texts))
    index = _SourceIndex(texts)
    text, bad_blocks = _check_blockquotes(text, index, quote_threshold, min_quote_words, marker)
    text, bad_inline = _check_inline_quotes(text, index, quote_threshold, min_quote_words, marker)
    return VerificationReport(
        text=text,
        removed_citations=removed,
        unverified_quotes=bad_blocks + bad_inline,
        cited=_cited_numbers(text),
        banned_phrases=[phrase for phrase, pattern in banned if pattern.search(answer)],
    )


def quote_support(quote: str, source: str) -> float:
    """How well ``source`` supports ``quote``: ``1 - word edit distance / quote length``.

    The edit distance is taken against the best-matching contiguous passage of ``source``
    (approximate substring matching over normalized words). An ellipsis in the quote splits it
    into parts matched separately; the parts' distances are summed.

    Args:
        quote: The quoted text.
        source: The source text.

    Returns:
        A number in ``[0, 1]``; 1.0 when the quote appears word for word (case and punctuation
        ignored), 1.0 for a quote without words.

    Example:
        >>> quote_support("the quick brown fox", "The quick, brown fox jumps.")
        1.0
        >>> quote_support("the quick red fox", "The quick, brown fox jumps.")
        0.75

    """
    return _SourceIndex([source]).support(quote)


# ---------------------------------------------------------------------------- helpers


def _banned_patterns(phrases: Sequence[str]) -> list[tuple[str, re.Pattern[str]]]:
    """Compile banned phrases: whole words, case-insensitive, any run of spaces between words."""
    if isinstance(phrases, str) or not isinstance(phrases, Sequence):
        raise TypeError(f"banned_phrases must be a list of strings, got {type(phrases).__name__}")
    out: list[tuple[str, re.Pattern[str]]] = []
    for i, phrase in enumerate(phrases):
        if not isinstance(phrase, str):
            raise TypeError(f"banned_phrases[{i}] must be a str, got {type(phrase).__name__}")
        words = phrase.split()
        if not words:
            raise ValueError(f"banned_phrases[{i}] is blank; remove it or give a phrase")
        body = r"\s+".join(re.escape(w) for w in words)
        start = r"(?<!\w)" if re.match(r"\w", words[0]) else ""
        end = r"(?!\w)" if re.search(r"\w$", words[-1]) else ""
        out.append((phrase, re.compile(start + body + end, re.IGNORECASE)))
    return out


def _source_texts(sources: Sequence[Document] | Sequence[str]) -> list[str]:
    if isinstance(sources, (str, Document)):
        raise TypeError(
            f"sources must be a sequence of Documents or strings, got a single "
            f"{type(sources).__name__}"
        )
    texts: list[str] = []
    for i, s in enumerate(sources):
        if isinstance(s, Document):
            texts.append(s.page_content)
        elif isinstance(s, str):
            texts.append(s)
        else:
            raise TypeError(f"sources[{i}] must be a Document or a str, got {type(s).__name__}")
    return texts


def _words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", _SOFT_HYPHEN.sub(r"\1", text)).casefold()
    return _WORD.findall(text)


def _code_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _CODE.finditer(text)]


def _inside(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(a < end and start < b for a, b in spans)


def _expand(body: str) -> list[tuple[int, int]]:
    """Parse a citation body into (first, last) items; a single number has first == last."""
    items = []
    for m in _CITATION_ITEM.finditer(body):
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        items.append((min(a, b), max(a, b)))
    return items


def _fix_citations(text: str, n_sources: int) -> tuple[str, list[int]]:
    code = _code_spans(text)
    removed: list[int] = []

    def repl(m: re.Match[str]) -> str:
        if _inside(code, m.start(), m.end()):
            return m.group(0)
        kept: list[str] = []
        changed = False
        for a, b in _expand(m.group("body")):
            if a >= 1 and b <= n_sources:
                kept.append(str(a) if a == b else f"{a}-{b}")
                continue
            changed = True
            if a == b:
                removed.append(a)
                continue
            if a < 1:
                removed.append(a)
            if b > n_sources:
                removed.append(b)
            lo, hi = max(a, 1), min(b, n_sources)
            if lo == hi:
                kept.append(str(lo))
            elif lo < hi:
                kept.append(f"{lo}-{hi}")
        if not changed:
            return m.group(0)
        if not kept:
            return ""
        return f"{m.group('pre')}[{m.group('word') or ''}{', '.join(kept)}]"

    fixed = _CITATION.sub(repl, text)
    return fixed, removed


def _cited_numbers(text: str) -> list[int]:
    code = _code_spans(text)
    seen: dict[int, None] = {}
    for m in _CITATION.finditer(text):
        if _inside(code, m.start(), m.end()):
            continue
        for a, b in _expand(m.group("body")):
            for n in range(a, min(b, a + _MAX_RANGE) + 1):
                seen.setdefault(n, None)
    return list(seen)


class _SourceIndex:
    """Sources as integer word arrays, for approximate substring matching of quotes."""

    def __init__(self, texts: Sequence[str]) -> None:
        self._vocab: dict[str, int] = {}
        self._arrays = [self._encode(_words(t), grow=True) for t in texts]
        self._joined = [" " + " ".join(_words(t)) + " " for t in texts]

    def _encode(self, words: list[str], *, grow: bool) -> NDArray[np.int64]:
        ids = []
        for w in words:
            i = self._vocab.get(w)
            if i is None:
                if not grow:
                    i = -1  # matches nothing
                else:
                    i = self._vocab[w] = len(self._vocab)
            ids.append(i)
        return np.asarray(ids, dtype=np.int64)

    def support(self, quote: str) -> float:
        quote = _CITATION.sub("", quote)
        parts = [_words(p) for p in _ELLIPSIS.split(quote)]
        parts = [p for p in parts if p]
        total = sum(len(p) for p in parts)
        if total == 0:
            return 1.0
        if not self._arrays:
            return 0.0
        # Fast path: every part occurs verbatim in one source.
        for joined in self._joined:
            if all(f" {' '.join(p)} " in joined for p in parts):
                return 1.0
        best = 0.0
        for source in self._arrays:
            errors = sum(_substring_distance(self._encode(p, grow=False), source) for p in parts)
            best = max(best, 1.0 - errors / total)
        return max(best, 0.0)


def _substring_distance(query: NDArray[np.int64], source: NDArray[np.int64]) -> int:
    """Smallest edit distance between ``query`` and any contiguous slice of ``source``.

    Sellers' algorithm (free start and end in ``source``), one numpy pass per query word; the
    in-row insertion recurrence ``D[i] = min(E[i], D[i-1] + 1)`` is a running minimum of
    ``E[i] - i``, shifted back by ``i``.
    """
    n = len(source)
    idx = np.arange(n + 1)
    prev = np.zeros(n + 1, dtype=np.int64)  # empty query: distance 0 at every end position
    for j, word in enumerate(query, 1):
        cur = np.empty(n + 1, dtype=np.int64)
        cur[0] = j
        cur[1:] = np.minimum(prev[:-1] + (source != word), prev[1:] + 1)
        prev = np.minimum.accumulate(cur - idx) + idx
    return int(prev.min())


def _check_blockquotes(
    text: str, index: _SourceIndex, threshold: float, min_words: int, marker: str
) -> tuple[str, list[str]]:
    lines = text.split("\n")
    code = _code_spans(text)
    out: list[str] = []
    bad: list[str] = []
    pos = 0
    i = 0
    while i < len(lines):
        m = _BLOCKQUOTE_LINE.match(lines[i])
        if m is None or _inside(code, pos, pos + len(lines[i])):
            out.append(lines[i])
            pos += len(lines[i]) + 1
            i += 1
            continue
        block = []
        start = i
        while i < len(lines) and (m := _BLOCKQUOTE_LINE.match(lines[i])) is not None:
            block.append(m.group(1))
            pos += len(lines[i]) + 1
            i += 1
        quote = "\n".join(block).strip()
        if len(_words(_CITATION.sub("", quote))) >= min_words and index.support(quote) < threshold:
            bad.append(quote)
            prefix = lines[start][: lines[start].index(">") + 1]
            out.append(f"{prefix} {marker}")
        else:
            out.extend(lines[start:i])
    return "\n".join(out), bad


def _check_inline_quotes(
    text: str, index: _SourceIndex, threshold: float, min_words: int, marker: str
) -> tuple[str, list[str]]:
    code = _code_spans(text)
    bad: list[str] = []

    def repl(m: re.Match[str]) -> str:
        quote = next(g for g in m.groups() if g is not None)
        if "\n\n" in quote or _inside(code, m.start(), m.end()) or marker in quote:
            return m.group(0)
        if len(_words(_CITATION.sub("", quote))) < min_words:
            return m.group(0)
        if index.support(quote) >= threshold:
            return m.group(0)
        bad.append(quote)
        return marker

    return _INLINE_QUOTE.sub(repl, text), bad
