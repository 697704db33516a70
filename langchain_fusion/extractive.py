"""Answer a question without a language model: pick the source sentences that match it best.

This is what [`build_qa_chain`][langchain_fusion.qa.build_qa_chain] falls back to when no chat
model is configured. It never invents text: the answer is made of sentences copied from the
sources, each followed by its source number ``[n]``.

How sentences are scored:

1. The sources are split into sentences (robust to abbreviations such as "e.g." and "Fig.",
   initials, decimals and section numbers such as "4.2.1", and to PDF text with hard line
   breaks, hyphenated line ends and heading lines).
2. The question and each sentence are tokenized with the package's BM25
   [`Tokenizer`][langchain_fusion.lexical.tokenizer.Tokenizer] (lowercase, stopwords
   removed, Snowball-stemmed), with question-framing words ("explain", "describe", ...) also
   ignored in the question.
3. A sentence's *coverage* is the idf-weighted fraction of the question's terms it contains,
   ``sum(idf(t) for t in question & sentence) / sum(idf(t) for t in question)``, with BM25's
   idf computed over the candidate sentences. A question term that appears in no sentence keeps
   the largest idf and so lowers every sentence's coverage: rare, specific words count most.
   A sentence is read with its heading: the innermost heading above it in the source (a heading
   line in the text, else the last part of ``metadata["section"]``, which ingestion sets for
   Markdown). So the table row "Code: E-217; Meaning: ..." under "7.2 Error codes" covers all of
   "What does error E-217 mean?", as a reader of the manual would take it.
4. ``score = coverage + 0.05 / rank`` of the sentence's source: among equally good sentences,
   those from higher-ranked sources win.

The question counts as *answerable* when the best coverage reaches ``min_coverage``, default
0.55: the best sentence must hold more than half of the question's idf-weighted terms. Chosen on
the tutorial PDF ``AI_Information.pdf`` and its question set: the three questions the text
answers reach coverage 1.0, the five it does not answer stay at or below 0.52 (they share generic
words such as "AI", "predict", "weapons" with the text, but not the specific one), and none of
600 off-topic queries (SciFact and NFCorpus) reaches 0.5. A lexical score cannot see synonyms:
a question worded differently from its answer can be reported as unanswerable.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from langchain_core.documents import Document

from langchain_fusion.formatting import source_label
from langchain_fusion.ingest import SECTION_SEPARATOR
from langchain_fusion.lexical.stopwords import ENGLISH_STOPWORDS
from langchain_fusion.lexical.tokenizer import Tokenizer

__all__ = [
    "DEFAULT_MIN_COVERAGE",
    "ExtractiveAnswer",
    "ExtractedSentence",
    "extractive_answer",
    "source_label",
    "split_sentences",
]

DEFAULT_MIN_COVERAGE = 0.55
"""Default answerability threshold on the best sentence's idf-weighted question coverage."""

SOURCE_RANK_BONUS = 0.05
"""Score bonus ``SOURCE_RANK_BONUS / rank`` for a sentence from the source ranked ``rank``."""

# Words that frame a question rather than say what it is about ("What role does X play?", "How
# is X used?", "Why is X considered important?"). Answers rarely repeat them, so counting them
# would make answerable questions look unanswerable.
_QUESTION_FRAME = frozenset(
    {
        "according", "describe", "described", "describes", "explain", "explained", "explains",
        "mention", "mentioned", "mentions", "discuss", "discussed", "discusses", "tell", "list",
        "give", "document", "documents", "text", "source", "sources", "passage", "passages",
        "provided", "context", "please", "role", "roles", "play", "plays", "contribute",
        "contributes", "use", "used", "uses", "using", "help", "helps", "consider", "considered",
        "important", "importance", "purpose", "mean", "means", "meaning", "define", "defined",
        "definition", "example", "examples", "kind", "kinds", "type", "types", "way", "ways",
        "currently", "specific", "particular", "main", "key",
    }
)  # fmt: skip
_MIN_SENTENCE_WORDS = 4
_MAX_SENTENCE_CHARS = 600

# Abbreviations after which a period does not end a sentence (compared lowercase, without the
# final period). Single letters (initials, "p.", "e" of "e.g.") are handled separately.
_ABBREVIATIONS = frozenset(
    {
        "e.g", "i.e", "cf", "vs", "viz", "al", "approx", "ca", "dr", "mr", "mrs", "ms", "prof",
        "sr", "jr", "st", "fig", "figs", "eq", "eqs", "ref", "refs", "sec", "ch", "chap", "vol",
        "pp", "no", "nos", "art", "dept", "est", "inc", "ltd", "corp", "co", "univ", "min", "max",
        "resp", "incl",
    }
)  # fmt: skip
_CLOSERS = "\"'\u201d\u2019)\\]"  # closing quotes and brackets after a full stop
_OPENERS = "\"'\u201c\u2018(\\["
_BOUNDARY = re.compile(f"[.!?\u2026]+[{_CLOSERS}]*\\s+")
_NEXT_STARTS_SENTENCE = re.compile(f"[{_OPENERS}]*[A-Z0-9]")
_WORD_BEFORE = re.compile(f"([\\w.]+)[.!?\u2026]*[{_CLOSERS}]*\\s*$")
_BULLET = re.compile(
    "^\\s*(?:[\u2022\u25cf\u25aa\u25e6\u2023\u2219\u00b7*\u2013\u2014-]"
    "|\\(?\\d{1,2}[.)]|\\(?[a-z][.)])\\s+"
)
_SOFT_HYPHEN = re.compile(r"(\w)-[ \t]*\n[ \t]*(?=[a-z])")  # "exam-\nple" -> "example"
_HARD_HYPHEN = re.compile(r"(\w)-[ \t]*\n[ \t]*(?=[A-Z0-9])")  # "COVID-\n19" -> "COVID-19"
_TERMINAL = re.compile(f"[.!?:;\u2026][{_CLOSERS}]*\\s*$")


@dataclass(frozen=True)
class ExtractedSentence:
    """One source sentence chosen (or considered) for an extractive answer.

    Attributes:
        text: The sentence, whitespace-normalized.
        source: 1-based number of the source it comes from.
        score: ``coverage + 0.05 / source`` (see the module docstring).
        coverage: idf-weighted fraction of the question's terms the sentence contains, in [0, 1].
        matched_terms: The question terms (stemmed) found in the sentence or its heading.
        heading: The innermost heading the sentence is under, if the source shows one.

    Example:
        >>> answer = extractive_answer("Where is the Eiffel Tower?",
        ...                            ["The Eiffel Tower is in Paris."])
        >>> s = answer.sentences[0]
        >>> s.source, s.coverage, s.matched_terms
        (1, 1.0, ['eiffel', 'tower'])

    """

    text: str
    source: int
    score: float
    coverage: float
    matched_terms: list[str] = field(default_factory=list)
    heading: str | None = None


@dataclass(frozen=True)
class ExtractiveAnswer:
    """The result of [`extractive_answer`][langchain_fusion.extractive.extractive_answer].

    Attributes:
        text: The answer: the chosen sentences, each followed by ``[n]``; or, when the
            question seems unanswerable, a statement saying so that names the closest source.
        sentences: The chosen sentences, best first (the closest one when unanswerable).
        answerable: Whether the best sentence covers at least ``min_coverage`` of the question.
        coverage: The best sentence's coverage (0.0 when there is none).
        closest_source: 1-based number of the source holding the best sentence, if any.

    Example:
        >>> extractive_answer("Who painted the Mona Lisa?", ["Bread needs flour."]).answerable
        False

    """

    text: str
    sentences: list[ExtractedSentence]
    answerable: bool
    coverage: float = 0.0
    closest_source: int | None = None


def extractive_answer(
    question: str,
    docs: Sequence[Document] | Sequence[str],
    *,
    max_sentences: int = 3,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    tokenizer: Tokenizer | None = None,
) -> ExtractiveAnswer:
    """Answer ``question`` with the best-matching sentences of ``docs``, citing them as ``[n]``.

    Args:
        question: The question.
        docs: The sources, best first (``[1]`` is ``docs[0]``): documents or plain texts.
        max_sentences: At most this many sentences in the answer (>= 1). Sentences covering less
            than half of what the best one covers are left out.
        min_coverage: Answerability threshold on the best sentence's coverage, in ``[0, 1]``.
        tokenizer: Tokenizer for question and sentences; default: the package's BM25 tokenizer
            (English stopwords plus question-framing words, Snowball stemming).

    Returns:
        An [`ExtractiveAnswer`][langchain_fusion.extractive.ExtractiveAnswer].

    Raises:
        TypeError: If ``question`` is not a string or a doc is neither a Document nor a string.
        ValueError: If ``max_sentences`` < 1 or ``min_coverage`` is outside ``[0, 1]``.

    Example:
        >>> docs = [
        ...     "Paris is the capital of France. It has 2.1 million inhabitants.",
        ...     "The Louvre, in Paris, is the world's most-visited museum.",
        ... ]
        >>> print(extractive_answer("What is the capital of France?", docs).text)
        Paris is the capital of France. [1]
        >>> print(extractive_answer("How tall is Mount Everest?", docs).text)
        The sources do not seem to answer this question. The closest source is [1].

    """
    if not isinstance(question, str):
        raise TypeError(f"question must be a str, got {type(question).__name__}")
    if isinstance(max_sentences, bool) or not isinstance(max_sentences, int):
        raise TypeError(f"max_sentences must be an int, got {max_sentences!r}")
    if max_sentences < 1:
        raise ValueError(f"max_sentences must be >= 1, got {max_sentences}")
    if not 0.0 <= min_coverage <= 1.0:
        raise ValueError(f"min_coverage must be in [0, 1], got {min_coverage!r}")
    docs_list = _as_documents(docs)
    tok = tokenizer if tokenizer is not None else _default_tokenizer()

    candidates = [
        (n, sentence, heading)
        for n, doc in enumerate(docs_list, 1)
        for sentence, heading in _sentences_under_headings(doc)
        if len(sentence.split()) >= _MIN_SENTENCE_WORDS
    ]
    if not candidates:
        text = (
            "No sources were found for this question."
            if not docs_list
            else "The sources do not seem to answer this question: they contain no usable text."
        )
        return ExtractiveAnswer(text=text, sentences=[], answerable=False)

    query_terms = list(dict.fromkeys(_question_terms(question, tok)))
    headings = list(dict.fromkeys(h for _, _, h in candidates if h))
    heading_terms = dict(zip(headings, map(set, tok.tokenize_many(headings)), strict=True))
    texts = [sentence for _, sentence, _ in candidates]
    sentence_terms = [
        set(terms) | (heading_terms[heading] if heading else set())
        for terms, (_, _, heading) in zip(tok.tokenize_many(texts), candidates, strict=True)
    ]
    n = len(candidates)
    df = Counter(t for terms in sentence_terms for t in terms if t in query_terms)
    idf = {t: math.log(1.0 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in query_terms}
    total = sum(idf.values())

    scored: list[ExtractedSentence] = []
    for (source, sentence, heading), terms in zip(candidates, sentence_terms, strict=True):
        matched = [t for t in query_terms if t in terms]
        coverage = sum(idf[t] for t in matched) / total if total > 0 else 0.0
        scored.append(
            ExtractedSentence(
                text=_clip(sentence),
                source=source,
                score=coverage + SOURCE_RANK_BONUS / source,
                coverage=coverage,
                matched_terms=matched,
                heading=heading,
            )
        )
    # Stable sort: ties keep source order, then sentence order.
    scored.sort(key=lambda s: -s.score)
    best = scored[0]

    if best.coverage < min_coverage or best.coverage == 0.0:
        return _unanswerable(best, docs_list)

    chosen: list[ExtractedSentence] = []
    seen: set[str] = set()
    for s in scored:
        if len(chosen) == max_sentences or s.coverage < 0.5 * best.coverage:
            break
        key = " ".join(s.text.lower().split())
        if key in seen:
            continue
        seen.add(key)
        chosen.append(s)
    text = " ".join(f"{s.text} [{s.source}]" for s in chosen)
    return ExtractiveAnswer(
        text=text,
        sentences=chosen,
        answerable=True,
        coverage=best.coverage,
        closest_source=best.source,
    )


def split_sentences(text: str) -> list[str]:
    r"""Split text (including PDF-extracted text) into sentences.

    Lines are joined unless a line is blank, starts with a bullet or list number, or looks like a
    heading (short, no final punctuation, followed by a capitalised line). A hyphen at the end of
    a line followed by a lowercase letter is taken as a word split across lines. A period ends a
    sentence only when followed by whitespace and a capital letter, digit, quote or bracket, and
    not after an abbreviation ("e.g.", "Fig.", "Dr.", "et al.") or an initial ("J."); so decimals
    and section numbers such as "4.2.1" never split.

    Args:
        text: The text.

    Returns:
        The sentences, whitespace-normalized, in order.

    Example:
        >>> split_sentences("See Fig. 2 and section 4.2.1 (e.g. Smith et al. 2020). Next one.")
        ['See Fig. 2 and section 4.2.1 (e.g. Smith et al. 2020).', 'Next one.']
        >>> split_sentences("Deep Learning\nDeep learning uses many\nlayers. It is power-\nful.")
        ['Deep Learning', 'Deep learning uses many layers.', 'It is powerful.']

    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return [sentence for sentence, _ in _sentences(text)]


def _sentences(text: str) -> list[tuple[str, bool]]:
    """Sentences with a flag telling whether each is a heading line."""
    out: list[tuple[str, bool]] = []
    for block, heading in _blocks(text):
        if heading:
            out.append((" ".join(block.split()), True))
        else:
            out.extend((sentence, False) for sentence in _split_block(block))
    return out


# ---------------------------------------------------------------------------- helpers

_TOKENIZER: Tokenizer | None = None


def _default_tokenizer() -> Tokenizer:
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = Tokenizer()
    return _TOKENIZER


def _unanswerable(best: ExtractedSentence, docs: list[Document]) -> ExtractiveAnswer:
    label = source_label(docs[best.source - 1])
    where = f"[{best.source}] ({label})" if label else f"[{best.source}]"
    text = f"The sources do not seem to answer this question. The closest source is {where}."
    if best.coverage > 0.0:
        text += f" Closest passage: {best.text} [{best.source}]"
    return ExtractiveAnswer(
        text=text,
        sentences=[best] if best.coverage > 0.0 else [],
        answerable=False,
        coverage=best.coverage,
        closest_source=best.source,
    )


def _question_terms(question: str, tok: Tokenizer) -> list[str]:
    words = " ".join(
        w for w in question.split() if w.strip("?!.,:;'\"").lower() not in _QUESTION_FRAME
    )
    terms = tok(words)
    if not terms:  # a question made only of stopwords ("What is it?"): use them all
        terms = tok(question)
    return terms


def _as_documents(docs: Sequence[Document] | Sequence[str]) -> list[Document]:
    if isinstance(docs, (str, Document)):
        raise TypeError(
            f"docs must be a sequence of Documents or strings, got a single {type(docs).__name__}"
        )
    out: list[Document] = []
    for i, d in enumerate(docs):
        if isinstance(d, Document):
            out.append(d)
        elif isinstance(d, str):
            out.append(Document(page_content=d))
        else:
            raise TypeError(f"docs[{i}] must be a Document or a str, got {type(d).__name__}")
    return out


def _clip(sentence: str) -> str:
    if len(sentence) <= _MAX_SENTENCE_CHARS:
        return sentence
    cut = sentence.rfind(" ", 0, _MAX_SENTENCE_CHARS)
    return sentence[: cut if cut > 0 else _MAX_SENTENCE_CHARS] + " …"


def _is_heading(line: str, next_line: str) -> bool:
    words = line.split()
    return (
        0 < len(words) <= 8
        and words[-1] not in ENGLISH_STOPWORDS  # "... developed by" continues on the next line
        and not _TERMINAL.search(line)
        and not line.rstrip().endswith(",")
        and _NEXT_STARTS_SENTENCE.match(next_line.lstrip()) is not None
    )


_TABLE_ROW = re.compile(r"^\|.*\|$")
_TABLE_RULE = re.compile(r"^:?-{3,}:?$")
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+(.*?)(?:\s+#+)?$")  # "## 2. Setup ##" -> "2. Setup"


def _sentences_under_headings(doc: Document) -> list[tuple[str, str | None]]:
    """Return the body sentences of a source, each with the innermost heading above it."""
    section = (doc.metadata or {}).get("section")
    heading: str | None = None
    if isinstance(section, str):  # ingestion's heading path "Manual > 7. Troubleshooting > 7.2"
        heading = section.rsplit(SECTION_SEPARATOR, 1)[-1].strip() or None
    out: list[tuple[str, str | None]] = []
    for sentence, is_heading in _sentences(doc.page_content):
        if is_heading:
            heading = sentence
        else:
            out.append((sentence, heading))
    return out


def _blocks(text: str) -> list[tuple[str, bool]]:
    """Group lines into blocks that no sentence crosses; flag the heading blocks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _HARD_HYPHEN.sub(r"\1-", _SOFT_HYPHEN.sub(r"\1", text))
    lines = text.split("\n")
    blocks: list[tuple[str, bool]] = []
    current: list[str] = []
    header: list[str] | None = None

    def flush(heading: bool = False) -> None:
        if current:
            blocks.append((" ".join(current), heading))
            current.clear()

    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            flush()
            continue
        if _TABLE_ROW.match(line):
            # A Markdown table row is one sentence, its cells labelled by the header row.
            flush()
            cells = [c.strip() for c in line.strip("|").split("|")]
            if all(_TABLE_RULE.match(c) for c in cells):
                continue
            following = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if _TABLE_ROW.match(following) and all(
                _TABLE_RULE.match(c) for c in following.strip("|").split("|")
            ):
                header = cells
                continue
            if header is not None and len(header) == len(cells):
                row = "; ".join(f"{h}: {c}" if h else c for h, c in zip(header, cells) if c)
            else:
                row = " | ".join(c for c in cells if c)
            current.append(row.rstrip(".") + ".")
            flush()
            continue
        header = None
        atx = _MARKDOWN_HEADING.match(line)
        if atx:
            flush()
            current.append(atx.group(1))
            flush(heading=True)
            continue
        if _BULLET.match(line):
            flush()
            line = _BULLET.sub("", line, count=1)
        next_line = next((x for x in lines[i + 1 : i + 2] if x.strip()), "")
        if next_line and _is_heading(line, next_line):
            # A short unpunctuated line before a capitalised one: a heading if the line before
            # it ended a sentence, else the tail of a wrapped sentence ("... developed by \n
            # Google Research \n The next ...").
            if not current or _TERMINAL.search(current[-1]):
                flush()
                current.append(line)
                flush(heading=True)
                continue
            current.append(line)
            flush()
            continue
        current.append(line)
    flush()
    return blocks


def _split_block(block: str) -> list[str]:
    block = " ".join(block.split())
    out: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(block):
        rest = block[m.end() :]
        if not _NEXT_STARTS_SENTENCE.match(rest):
            continue
        before = _WORD_BEFORE.search(block[: m.start() + 1])
        word = before.group(1).lower().rstrip(".") if before else ""
        last = word.rsplit(".", 1)[-1] if "." in word and word not in _ABBREVIATIONS else word
        if word in _ABBREVIATIONS or last in _ABBREVIATIONS:
            continue
        if len(last) == 1 and last.isalpha():  # an initial ("J. Smith") or "p. 3"
            continue
        piece = block[start : m.end()].strip()
        if piece:
            out.append(piece)
        start = m.end()
    tail = block[start:].strip()
    if tail:
        out.append(tail)
    return out
